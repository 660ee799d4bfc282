import CGreenContext
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
    /// Installs the sink, once per process (each hub asks at creation).
    static func installSink() { _ = installed }

    private static let installed: Void = {
        green_monitor_set_sink { incident in
            guard let incident, let logger = GreenDiagnostics.currentLogger else { return 0 }
            log(incident.pointee, to: logger)
            return 1
        }
    }()

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
