import CGreenContext
import Foundation
import Glibc
import Green
import GreenTestSupport
import XCTest

/// The table debuggers read (green_debug.h, HubDebugInfo.swift), and the
/// gdb script that reads it (Tools/gdb/green.py) on a GreenProbe child:
/// attached to it live, then on a core file of it.
final class GdbScriptTests: GreenTestCase {
    func testHubsAreListedForDebuggersWhileTheyLive() throws {
        XCTAssertEqual(green_debug_swift_layout_state(), 1, "the Swift layout did not check out")
        XCTAssertEqual(green_debug_hub_listed(Unmanaged.passUnretained(Hub.current).toOpaque()), 1)
        let other = try HubThread.start(name: "listed")
        let address = AsyncResult<UInt>()
        _ = other.handle.spawn { _ = address.set(UInt(bitPattern: Unmanaged.passUnretained(Hub.current).toOpaque())) }
        let hub = UnsafeRawPointer(bitPattern: try address.get(timeout: 5))
        XCTAssertEqual(green_debug_hub_listed(hub), 1)
        other.stop()
        XCTAssertTrue(try other.join(timeout: 5))
        // The hub goes when its thread's locals are destroyed, just after.
        try waitUntil(timeout: 5, "the hub left the table") { green_debug_hub_listed(hub) == 0 }
    }

    /// What GreenProbe gdb-targets parked, from its "ready" line.
    private struct Targets {
        let pid: pid_t
        let dedicated: [UInt64]
        let compact: [UInt64]
        let compactMode: Bool
    }

    func testGdbListsTheGreenletsOfALiveProcessAndOfACoreWithTheirBacktraces() throws {
        // A sanitizer's shadow memory is terabytes of reserved mappings:
        // gcore would try to write them out.
        try AnalysisTool.skipUnderSanitizers("a core of a sanitized process is its shadow memory too")
        guard let gdb = onPath("gdb"), let gcore = onPath("gcore") else {
            throw XCTSkip("gdb and gcore are needed (apt install gdb)")
        }
        guard let probe = Probe.executable else { return XCTFail("GreenProbe was not built") }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = root.appendingPathComponent("Tools/gdb/green.py").path
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("green-gdb-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        // gcore cannot save a stack slab whose guard pages are madvise
        // guard regions (green.py's header says why): guard pages of their
        // own mapping, which it skips.
        environment["GREEN_STACK_GUARD"] = "mprotect"
        let child = try Subprocess([probe.path, "gdb-targets"], environment: environment,
                                   stdin: .null, stdout: .pipe, stderr: .pipe)
        defer {
            child.kill(SIGKILL)
            _ = try? child.wait(timeout: 10)
        }
        let targets = try withTimeout(30) { try readTargets(child.stdout!) }
        // Attached to the live process: the listing first, for the id of
        // the greenlet on the second hub.
        let listing = try runGdb(gdb, ["source \(script)", "green-list"], target: ["-p", "\(targets.pid)"])
        try skipIfPtraceIsRefused(listing)
        let remote = listing.stdout.split(separator: "\n").first { $0.contains(" remote-1 ") }
            .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { UInt64($0) }
        guard let remote else { return XCTFail("no remote-1 in the listing:\n\(listing.stdout)\n\(listing.stderr)") }
        let commands = ["source \(script)", "green-list"]
            + (targets.dedicated + targets.compact + [remote]).map { "green-bt \($0)" }
        let live = try runGdb(gdb, commands, target: ["-p", "\(targets.pid)"])
        check(live.stdout, targets, remote: remote, what: "live process")

        // On a core file of it.
        let prefix = directory.appendingPathComponent("core").path
        let dump = try run([gcore, "-o", prefix, "\(targets.pid)"], limit: 60)
        try skipIfPtraceIsRefused(dump)
        let core = "\(prefix).\(targets.pid)"
        guard FileManager.default.fileExists(atPath: core) else {
            return XCTFail("gcore wrote no core file:\n\(dump.stdout)\n\(dump.stderr)")
        }
        child.kill(SIGKILL)
        _ = try child.wait(timeout: 10)
        let post = try runGdb(gdb, commands, target: [probe.path, core])
        check(post.stdout, targets, remote: remote, what: "core file")
        XCTAssertTrue(post.stdout.contains("waits up to its last loop pass, at "), post.stdout)
    }

    /// What the listing and the backtraces must say about each greenlet.
    private func check(_ out: String, _ targets: Targets, remote: UInt64, what: String) {
        let lines = out.split(separator: "\n").map(String.init)
        func listed(_ id: UInt64) -> String? { lines.first { $0.hasPrefix("  id \(id) ") } }
        /// The backtrace of greenlet `id`: from its title to the next one.
        func backtrace(_ id: UInt64) -> String {
            guard let start = lines.firstIndex(where: { $0.hasPrefix("greenlet \(id) \"") }) else { return "" }
            let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("greenlet ") } ?? lines.endIndex
            return lines[start..<end].joined(separator: "\n")
        }
        let context = "\(what):\n\(out)"
        XCTAssertTrue(lines.contains { $0.hasPrefix("hub 1 on thread ") && $0.contains(": 6 greenlets") }, context)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  id ") && $0.contains(" main ") && $0.contains("parked on sleep for ") },
                      context)
        XCTAssertTrue(lines.contains { $0.contains(" hub ") && $0.contains("running on thread ") }, context)
        // The second hub, on a thread of its own.
        XCTAssertTrue(lines.contains { $0.hasPrefix("hub 2 on thread ") && $0.contains(": 3 greenlets") }, context)
        XCTAssertTrue(lines.contains { $0.contains(" other-main ") && $0.contains("parked on AsyncResult.wait") }, context)
        XCTAssertTrue(listed(remote)?.contains("parked on Event.wait for ") == true, context)
        XCTAssertTrue(backtrace(remote).contains("parkedOnItsOwnStack"), context)
        for (i, id) in targets.dedicated.enumerated() {
            let line = listed(id) ?? ""
            XCTAssertTrue(line.contains(" dedicated-\(i + 1) "), context)
            XCTAssertTrue(line.contains("parked on Event.wait for "), context)
            XCTAssertFalse(line.contains("compact"), context)
            XCTAssertTrue(backtrace(id).contains("parkedOnItsOwnStack"), context)
        }
        for (i, id) in targets.compact.enumerated() {
            let line = listed(id) ?? ""
            XCTAssertTrue(line.contains(" compact-\(i + 1) "), context)
            XCTAssertTrue(line.contains("parked on Event.wait for "), context)
            XCTAssertTrue(backtrace(id).contains("parkedOnTheRunStack"), context)
        }
        guard targets.compactMode else { return }
        // compact-1 parked first: compact-2 took the run stack from it.
        XCTAssertTrue(listed(targets.compact[0])?.contains("compact, stack saved on the heap") == true, context)
        XCTAssertTrue(backtrace(targets.compact[0]).contains("read from its stack's image on the heap"), context)
        XCTAssertTrue(listed(targets.compact[1])?.contains("compact, stack on the run stack") == true, context)
    }

    /// Reads the probe's "ready pid=P dedicated=ID,ID compact=ID,ID
    /// compactMode=BOOL" line.
    private func readTargets(_ out: Socket) throws -> Targets {
        var bytes: [UInt8] = []
        while !bytes.contains(UInt8(ascii: "\n")) {
            let chunk = try out.recv()
            if chunk.isEmpty { throw TestError("GreenProbe gdb-targets ended before it was ready") }
            bytes += chunk
        }
        let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n")[0]
        var fields: [String: String] = [:]
        for word in line.split(separator: " ").dropFirst() {
            let parts = word.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        func ids(_ key: String) -> [UInt64] { (fields[key] ?? "").split(separator: ",").compactMap { UInt64($0) } }
        guard line.hasPrefix("ready "), let pid = fields["pid"].flatMap({ pid_t($0) }),
              ids("dedicated").count == 2, ids("compact").count == 2 else {
            throw TestError("unexpected line from GreenProbe gdb-targets: \(line)")
        }
        return Targets(pid: pid, dedicated: ids("dedicated"), compact: ids("compact"),
                       compactMode: fields["compactMode"] == "true")
    }

    private struct Output {
        let stdout: String
        let stderr: String
    }

    /// gdb in batch mode, no init files, no debuginfod, on `target`.
    private func runGdb(_ gdb: String, _ commands: [String], target: [String]) throws -> Output {
        var arguments = [gdb, "-batch", "-nx", "-iex", "set debuginfod enabled off", "-iex", "set complaints 0"]
        for c in commands { arguments += ["-ex", c] }
        // Reading a large debug build's symbols takes gdb a while, longer
        // on a loaded machine.
        return try run(arguments + target, limit: 90)
    }

    private func run(_ arguments: [String], limit: Double) throws -> Output {
        let process = try Subprocess(arguments, stdin: .null, stdout: .pipe, stderr: .pipe)
        do {
            let (out, err) = try withTimeout(limit) { try process.communicate() }
            return Output(stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
        } catch is TimeoutError {
            process.kill(SIGKILL)
            _ = try? process.wait(timeout: 10)
            throw TestError("\(arguments[0]) did not end within \(limit) s")
        }
    }

    /// Containers often refuse ptrace (no CAP_SYS_PTRACE, or Yama).
    private func skipIfPtraceIsRefused(_ output: Output) throws {
        let text = output.stdout + output.stderr
        for refusal in ["ptrace: Operation not permitted", "Could not attach to process", "Unable to attach"]
            where text.contains(refusal) {
            throw XCTSkip("ptrace is not permitted here: \(refusal)")
        }
    }

    private func onPath(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
