import Foundation
import Glibc
import Green
import XCTest
import GreenTestSupport

/// The main thread's hub as Swift's main and default executors
/// (`GreenExecutorFactory`). The factory can be installed once per process:
/// each case runs in a child process, the GreenProbe helper's `main-hub`
/// scenarios (Tests/GreenProbe/MainHub.swift).
final class MainHubExecutorTests: XCTestCase {
    /// The probe's lines, as "key: value" pairs.
    private func lines(_ outcome: ProbeOutcome) -> [String: String] {
        var values: [String: String] = [:]
        for line in outcome.stdout.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            values[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return values
    }

    func testMainActorCodeTasksAndGreenletsTakeTurnsOnTheMainThread() throws {
        // No blocked-hub monitor: its watchdog would be the one other thread.
        let outcome = try Probe.run("main-hub", environment: ["GREEN_MONITOR_MS": "0"], limit: 60)
        XCTAssertEqual(outcome.reason, .exit, outcome.stderr)
        XCTAssertEqual(outcome.status, 0, "stdout: \(outcome.stdout)\nstderr: \(outcome.stderr)")
        XCTAssertEqual(outcome.stderr, "")
        let v = lines(outcome)
        XCTAssertEqual(v["main actor on main thread"], "true", outcome.stdout)
        // A default-executor task and a greenlet, each sleeping 4 ms five
        // times, alternate (every step of either is checked to run on the
        // main thread as it is logged).
        let turns = v["turns"]?.split(separator: " ").map(String.init) ?? []
        XCTAssertEqual(Set(turns), Set((0..<5).flatMap { ["main\($0)", "task\($0)", "greenlet\($0)"] }), outcome.stdout)
        XCTAssertGreaterThanOrEqual(Int(v["task/greenlet alternations"] ?? "") ?? 0, 4, outcome.stdout)
        XCTAssertTrue(v["slept 20 ms"]?.hasPrefix("true") == true, outcome.stdout)
        XCTAssertTrue(v["slept 20 ms"]?.hasSuffix("on main thread: true") == true, outcome.stdout)
        // Sleeps, tasks and timers so far ran without a single other
        // thread: no Dispatch worker, no timer thread.
        XCTAssertEqual(v["other threads so far"], "0", outcome.stdout)
        XCTAssertEqual(v["Task.detached on main thread"], "true", outcome.stdout)
        XCTAssertEqual(v["DispatchQueue.main on main thread"], "true", outcome.stdout)
        XCTAssertEqual(v["task preferring the platform executor on main thread"], "false", outcome.stdout)
        XCTAssertTrue(outcome.stdout.hasSuffix("main-hub ok\n"), outcome.stdout)
    }

    func testAnErrorThrownByTheMainBodyExitsWithStatusOne() throws {
        let outcome = try Probe.run("main-hub-throws", limit: 60)
        XCTAssertEqual(outcome.reason, .exit, outcome.stderr)
        XCTAssertEqual(outcome.status, 1)
        XCTAssertEqual(outcome.stdout, "about to throw\n")
        XCTAssertEqual(outcome.stderr, "Error: refused on purpose\n")
    }

    func testStoppingTheMainExecutorEndsTheProcessDespiteAPendingSleep() throws {
        let start = Date()
        let outcome = try Probe.run("main-hub-stop", limit: 60)
        XCTAssertEqual(outcome.reason, .exit, outcome.stderr)
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertEqual(outcome.stdout, "stopping\n")
        XCTAssertLessThan(Date().timeIntervalSince(start), 30, "the 60 s sleep did not hold the process")
    }

    /// The example names the factory with `typealias DefaultExecutorFactory`
    /// (the compiler's own hook, built with -disable-availability-checking)
    /// and checks itself: greenlets and tasks stepping a main-actor tally
    /// without a lock, all on the main thread.
    func testTheMainHubExampleInstalledThroughTheTypeAliasChecksOut() throws {
        let exe = try XCTUnwrap(builtExecutable(named: "main-hub") ?? builtExecutable(named: "MainHub"),
                                "main-hub not built next to the tests")
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        let child = try Subprocess([exe, "--workers", "50", "--steps", "5"], environment: env,
                                   stdin: .null, stdout: .pipe, stderr: .pipe)
        let output = try withTimeout(60) { try child.communicate() }
        let stdout = String(decoding: output.stdout, as: UTF8.self)
        let stderr = String(decoding: output.stderr, as: UTF8.self)
        guard case .exited(let code)? = child.status else {
            return XCTFail("main-hub did not exit normally: \(String(describing: child.status)); \(stderr)")
        }
        XCTAssertEqual(code, 0, "stdout: \(stdout)\nstderr: \(stderr)")
        XCTAssertTrue(stdout.contains("50 greenlets and 50 tasks made 250 + 250 steps"), stdout)
        XCTAssertTrue(stdout.contains("threads used: 1 (the main one: true)"), stdout)
    }
}
