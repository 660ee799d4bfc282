import CGreenContext
import Glibc
import Logging

/// The blocked-hub monitor's reports as diagnostics (see `HubMonitor`).
///
/// The monitor is C code on a thread of its own: it formats each report
/// there and hands it to this sink once it let go of its locks. With a
/// logger (see `GreenDiagnostics`), the sink logs it at level `warning`
/// with metadata (`greenlet`, `hub`, `held_ms`, `threshold_ms`, and
/// `syscall` or `backtrace`) and tells the monitor it took it; without
/// one, it declines and the monitor writes the report to stderr itself,
/// by the system call, as it always has.
enum BlockedHubReport {
    /// Installs the sink and the annotator, once per process (each hub
    /// asks at creation).
    static func installSink() { _ = installed }

    private static let installed: Void = {
        green_monitor_set_annotator { incident, out, size in
            guard let incident, let out, let text = annotated(incident.pointee) else { return 0 }
            var bytes = Array(text.utf8.prefix(size - 1))
            bytes.append(0)
            bytes.withUnsafeBytes { UnsafeMutableRawPointer(out).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            return 1
        }
        green_monitor_set_sink { incident in
            guard let incident, let logger = GreenDiagnostics.currentLogger else { return 0 }
            log(incident.pointee, to: logger)
            return 1
        }
    }()

    /// A Valgrind build (GREEN_VALGRIND), or any build Valgrind runs (it
    /// preloads its vgpreload libraries).
    static let underValgrind: Bool = {
        if green_context_tool_annotations() & 4 != 0 { return true }
        guard let preload = getenv("LD_PRELOAD") else { return false }
        return String(cString: preload).contains("vgpreload")
    }()

    /// How many frames of user code a report names.
    static let userFrames = 3

    /// The report with its backtrace trimmed to the frames that matter:
    /// where the thread is, and the frames of user code that led there
    /// (the first of them is the code that holds the hub), with their
    /// source lines. Nil without a backtrace (a thread in a system call).
    static func annotated(_ incident: green_monitor_incident) -> String? {
        // Under Valgrind, reading the mapped images' headers (to find the
        // symbols) touches Valgrind's own mappings and faults: keep the
        // plain report there.
        if underValgrind { return nil }
        // The first two frames are the signal handler's and the kernel's
        // signal trampoline; the third is the interrupted instruction, the
        // others return addresses (one byte back lands in the call).
        guard let raw = incident.addresses, incident.address_count > 2, let text = incident.text else { return nil }
        let addresses = (2..<Int(incident.address_count)).map { i in
            UInt64(raw[i]) &- (i == 2 ? 0 : 1)
        }
        let names = FrameSymbols.names(of: Set(addresses))
        let user = addresses.filter { names[$0].map { !$0.isLibrary } ?? false }.prefix(userFrames)
        let lines = FrameSymbols.lines(of: Set(user).union([addresses[0]]))
        func describe(_ a: UInt64) -> String {
            let n = names[a]
            var s = n?.function ?? "0x" + String(a, radix: 16)
            if let l = lines[a] ?? nil {
                s += " at \(l.file):\(l.line)"
            } else if let image = n?.image {
                s += " in \(image)"
            }
            return s
        }
        let headline = String(cString: text).split(separator: "\n").first.map(String.init) ?? ""
        var out = headline + "\n  now in " + describe(addresses[0]) + "\n"
        if user.isEmpty {
            out += "  (no frame of user code among \(addresses.count))\n"
        } else {
            for (i, a) in user.enumerated() {
                out += (i == 0 ? "  user code: " : "             ") + describe(a) + "\n"
            }
        }
        return out
    }

    private static func log(_ incident: green_monitor_incident, to logger: Logger) {
        var metadata: Logger.Metadata = [
            "greenlet": "\(String(cString: incident.greenlet))",
            "hub": "\(incident.hub_tag)",
            "held_ms": "\(Int((incident.held_seconds * 1000).rounded()))",
            "threshold_ms": "\(Int((incident.threshold_seconds * 1000).rounded()))",
        ]
        if incident.syscall_number >= 0 {
            let name = String(cString: incident.syscall_name)
            metadata["syscall"] = name.isEmpty ? "\(incident.syscall_number)" : "\(name) (\(incident.syscall_number))"
        }
        if let text = incident.text {
            let lines = String(cString: text).split(separator: "\n").dropFirst()
            if !lines.isEmpty { metadata["where"] = .array(lines.map { .string(String($0.drop { $0 == " " })) }) }
        }
        if let symbols = incident.backtrace, incident.backtrace_count > 0 {
            metadata["backtrace"] = .array((0..<Int(incident.backtrace_count)).map {
                .string(symbols[$0].map { String(cString: $0) } ?? "?")
            })
        }
        let message: Logger.Message = incident.syscall_number >= 0
            ? "a greenlet has held its hub without switching: its thread waits in the kernel, in a system call"
            : "a greenlet has held its hub without switching: a busy loop, or a call that blocks the thread"
        logger.warning(message, metadata: metadata, source: "Green")
    }
}
