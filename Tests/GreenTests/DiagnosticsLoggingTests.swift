import Glibc
import Green
import Logging
import XCTest
import GreenTestSupport

/// The runtime's diagnostics go to a swift-log logger when there is one
/// (injected, or bootstrapped), with their details as metadata, and stay
/// the plain lines on stderr they always were when there is none.
final class DiagnosticsLoggingTests: LogRecordingTestCase {
    func testAnUnobservedGreenletErrorArrivesInTheLoggerWithItsMetadata() throws {
        do {
            let g = spawn(name: "doomed") { () throws -> Void in throw TestError("boom") }
            try g.join()
        }
        let all = entries.all
        XCTAssertEqual(all.count, 1, "\(all)")
        let entry = try XCTUnwrap(all.first)
        XCTAssertEqual(entry.label, "swift-green")
        XCTAssertEqual(entry.level, .error)
        XCTAssertEqual(entry.message, "a greenlet failed and nobody asked for its result")
        XCTAssertEqual(entry.metadata["greenlet"], "doomed")
        XCTAssertEqual(entry.metadata["hub"], "\(Hub.current.id)")
        XCTAssertEqual(entry.metadata["error"], "TestError(boom)")
        XCTAssertNotNil(entry.metadata["greenlet_id"])
        XCTAssertEqual(entry.error as? TestError, TestError("boom"))
    }

    func testAHandlerSetOnTheReporterStillTakesTheErrorInstead() throws {
        let seen = Locked<[String]>([])
        UnhandledErrorReporter.setHandler { name, error in seen.withLock { $0.append("\(name): \(error)") } }
        defer { UnhandledErrorReporter.setHandler(nil) }
        do {
            let g = spawn(name: "handled") { () throws -> Void in throw TestError("x") }
            try g.join()
        }
        XCTAssertEqual(seen.withLock { $0 }, ["handled: TestError(x)"])
        XCTAssertEqual(entries.all.count, 0)
    }

    func testABlockedHubIsAWarningNamingTheGreenletAndTheHub() throws {
        HubMonitor.threshold = 0.05
        HubMonitor.setPrinting(true)
        defer { HubMonitor.threshold = 0.1 }
        // The main greenlet holds the thread in the kernel while another
        // greenlet waits on this hub.
        let waiting = spawn(name: "waiting") { try Green.sleep(0.3) }
        try letOthersRun()   // it starts its sleep; the hub has seen main run
        var request = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        var left = timespec()
        while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
        try waiting.join()
        // The watchdog reports on its own thread.
        let arrived = entries.wait(forCount: 1, timeout: 5)
        XCTAssertTrue(arrived, "no report reached the logger")
        let entry = try XCTUnwrap(entries.all.first)
        XCTAssertEqual(entry.level, .warning)
        XCTAssertTrue(entry.message.hasPrefix("a greenlet has held its hub without switching"), entry.message)
        XCTAssertEqual(entry.metadata["greenlet"], "main")
        XCTAssertEqual(entry.metadata["hub"], "\(Hub.current.id)")
        XCTAssertEqual(entry.metadata["threshold_ms"], "50")
        XCTAssertGreaterThanOrEqual(Int(entry.metadata["held_ms"] ?? "") ?? 0, 50)
        XCTAssertTrue((entry.metadata["syscall"] ?? "").contains("nanosleep"), "\(entry.metadata)")
        // The monitor keeps the plain text too.
        XCTAssertTrue(HubMonitor.lastReport.contains("greenlet main has held its hub"), HubMonitor.lastReport)
    }

    func testACompactImageOverTheLimitIsAWarningOnceTheSwitchIsOver() throws {
        guard StackMode.compactAvailable else { throw XCTSkip("no compact greenlets in this build") }
        let hub = Hub.current
        let limit = hub.compactReportLimit
        hub.compactReportLimit = 4096
        defer { hub.compactReportLimit = limit }
        let go = Event()
        let deep = spawn(name: "deep-parker", stackMode: .compact) { () throws -> UInt64 in
            try recurse(depth: 64) { try go.wait() }
        }
        // Another compact greenlet takes the run stack: deep-parker's image
        // is saved, in the switch, which only queues the report.
        try spawn(name: "other", stackMode: .compact) {}.join()
        go.set()
        _ = try deep.get()
        // The hub logs it at its next loop pass (perhaps done already).
        try waitUntil(timeout: 5, "the report") { !entries.all.isEmpty }
        let all = entries.all
        XCTAssertEqual(all.count, 1, "\(all)")
        let entry = try XCTUnwrap(all.first)
        XCTAssertEqual(entry.level, .warning)
        XCTAssertEqual(entry.metadata["greenlet"], "deep-parker")
        XCTAssertEqual(entry.metadata["hub"], "\(hub.id)")
        XCTAssertEqual(entry.metadata["report_limit"], "4096")
        XCTAssertGreaterThan(Int(entry.metadata["image_bytes"] ?? "") ?? 0, 4096)
    }

    // MARK: - Without a logger, and with a bootstrapped one (child processes)

    func testWithoutABootstrapTheDiagnosticsAreThePlainLinesOfBefore() throws {
        let outcome = try Probe.run("diagnostics-plain", environment: ["GREEN_STACK_MODE": "bogus"])
        XCTAssertEqual(outcome.status, 0, "stdout: \(outcome.stdout)\nstderr: \(outcome.stderr)")
        XCTAssertTrue(outcome.stdout.contains("reports 1"), outcome.stdout)
        let lines = outcome.stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertTrue(lines.contains("swift-green: GREEN_STACK_MODE=bogus is neither compact nor dedicated; using dedicated"),
                      outcome.stderr)
        XCTAssertTrue(lines.contains("swift-green: greenlet doomed failed and nobody asked for its result: ProbeError(boom)"),
                      outcome.stderr)
        let blocked = lines.filter { $0.hasPrefix("swift-green: greenlet main has held its hub for ") }
        XCTAssertEqual(blocked.count, 1, outcome.stderr)
        XCTAssertTrue(blocked.first?.hasSuffix(" ms without switching (monitor threshold 50 ms): "
                                               + "a busy loop, or a call that blocks the thread") ?? false, outcome.stderr)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  the thread waits in the kernel, in system call ") }, outcome.stderr)
        if outcome.stdout.contains("compact true") {
            let compact = lines.filter { $0.hasPrefix("swift-green: compact greenlet deep-parker (id ") }
            XCTAssertEqual(compact.count, 1, outcome.stderr)
            XCTAssertTrue(compact.first?.hasSuffix(" bytes of stack, over the report limit of 4096: "
                                                   + "its image costs that much heap while it is parked") ?? false,
                          outcome.stderr)
        }
        // Nothing else: no line in swift-log's format ("TIMESTAMP LEVEL
        // swift-green: [Green] MESSAGE").
        let known = lines.filter { $0.hasPrefix("swift-green: ") || $0.hasPrefix("  ") || $0.isEmpty }
        XCTAssertEqual(known.count, lines.count, outcome.stderr)
        XCTAssertFalse(outcome.stderr.contains("[Green]"), outcome.stderr)
    }

    func testABootstrappedProgramGetsTheDiagnosticsInItsHandler() throws {
        let outcome = try Probe.run("diagnostics-bootstrap", environment: ["GREEN_STACK_MODE": "bogus"])
        XCTAssertEqual(outcome.status, 0, "stdout: \(outcome.stdout)\nstderr: \(outcome.stderr)")
        // Not one plain line left on stderr.
        XCTAssertFalse(outcome.stderr.contains("swift-green:"), outcome.stderr)
        let logs = outcome.stdout.split(separator: "\n").filter { $0.hasPrefix("log|") }
            .map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertTrue(logs.allSatisfy { $0.count == 5 && $0[1] == "swift-green" }, outcome.stdout)
        func entry(_ message: String) -> [String]? { logs.first { $0[3].hasPrefix(message) } }
        let stackMode = try XCTUnwrap(entry("GREEN_STACK_MODE is neither"), outcome.stdout)
        XCTAssertEqual(stackMode[2], "warning")
        XCTAssertEqual(stackMode[4], "GREEN_STACK_MODE=bogus")
        let failed = try XCTUnwrap(entry("a greenlet failed and nobody asked for its result"), outcome.stdout)
        XCTAssertEqual(failed[2], "error")
        XCTAssertTrue(failed[4].contains("error=ProbeError(boom)"), failed[4])
        XCTAssertTrue(failed[4].contains("greenlet=doomed"), failed[4])
        XCTAssertTrue(failed[4].contains("hub=1"), failed[4])
        let blocked = try XCTUnwrap(entry("a greenlet has held its hub without switching"), outcome.stdout)
        XCTAssertEqual(blocked[2], "warning")
        XCTAssertTrue(blocked[4].contains("greenlet=main"), blocked[4])
        XCTAssertTrue(blocked[4].contains("threshold_ms=50"), blocked[4])
        XCTAssertTrue(blocked[4].contains("nanosleep"), blocked[4])
        if outcome.stdout.contains("compact true") {
            let compact = try XCTUnwrap(entry("a compact greenlet parked with a stack image over the report limit"),
                                        outcome.stdout)
            XCTAssertEqual(compact[2], "warning")
            XCTAssertTrue(compact[4].contains("greenlet=deep-parker"), compact[4])
            XCTAssertTrue(compact[4].contains("report_limit=4096"), compact[4])
        }
    }
}

/// Recurses `depth` frames of 128 bytes of locals each, then runs `body`
/// there (parking with a deep stack), and sums on the way back.
@inline(never)
private func recurse(depth: Int, _ body: () throws -> Void) throws -> UInt64 {
    var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &buffer) { p in
        for i in 0..<p.count { p[i] = UInt8(truncatingIfNeeded: depth &+ i) }
    }
    let below = depth == 0 ? try { try body(); return UInt64(0) }() : try recurse(depth: depth - 1, body)
    return below &+ buffer.0 &+ buffer.15
}
