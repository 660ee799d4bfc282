import Foundation
import Green
import XCTest
import GreenTestSupport

/// Signals as greenlets, and child processes with cooperative pipes.
final class SignalTests: GreenTestCase {
    func testASIGUSR1HandlerRunsAsAGreenlet() throws {
        let handled = Event()
        var ranInGreenlet = false
        let handler = SignalHandler(SIGUSR1) {
            ranInGreenlet = AnyGreenlet.current.name.hasPrefix("signal")
            try Green.sleep(0)          // a handler may block
            handled.set()
        }
        defer { handler.cancel() }
        kill(getpid(), SIGUSR1)
        XCTAssertTrue(try handled.wait(timeout: 5))
        XCTAssertTrue(ranInGreenlet)
        XCTAssertEqual(handler.count, 1)
        // Let the handler greenlet finish.
        try Green.sleep(0)
    }

    func testACancelledHandlerNoLongerRuns() throws {
        // A second handler stays on the signal, so that it is still taken
        // by libev (not by the default action, which would end the test
        // process), and shows when the signal has been handled.
        var cancelledRuns = 0
        let cancelled = SignalHandler(SIGUSR2) { cancelledRuns += 1 }
        let handled = Event()
        let witness = SignalHandler(SIGUSR2) { handled.set() }
        defer { witness.cancel() }
        cancelled.cancel()
        XCTAssertFalse(cancelled.isActive)
        kill(getpid(), SIGUSR2)
        XCTAssertTrue(try handled.wait(timeout: 5))
        try Green.sleep(0)
        XCTAssertEqual(cancelledRuns, 0)
        XCTAssertEqual(cancelled.count, 0)
        XCTAssertEqual(witness.count, 1)
    }

    func testWaitForSignalReturnsWhenItArrives() throws {
        let sender = spawn { try Green.sleep(0.01); kill(getpid(), SIGUSR1) }
        XCTAssertTrue(try waitForSignal(SIGUSR1, timeout: 5))
        try sender.join()
    }
}

final class SubprocessTests: GreenTestCase {
    func testCatRoundTripsDataThroughItsPipes() throws {
        let child = try Subprocess(["cat"])
        let input = Array((0..<200_000).map { UInt8(truncatingIfNeeded: $0) })
        let (out, err) = try withTimeout(30) { try child.communicate(input: input) }
        XCTAssertEqual(out.count, input.count)
        XCTAssertEqual(out, input)
        XCTAssertEqual(err, [])
        XCTAssertEqual(child.status, .exited(0))
    }

    func testTheHubRunsOtherGreenletsWhileAChildRuns() throws {
        let (status, ticks) = try countingTicks(every: 0.005) {
            let child = try Subprocess(["sleep", "0.2"], stdin: .null, stdout: .null)
            return try withTimeout(10) { try child.wait() }
        }
        XCTAssertEqual(status, .exited(0))
        XCTAssertGreaterThan(ticks, 10)
    }

    func testAnExitCodeAndAKillAreReported() throws {
        let failing = try Subprocess(["sh", "-c", "exit 3"], stdin: .null, stdout: .null)
        XCTAssertEqual(try withTimeout(10) { try failing.wait() }, .exited(3))
        let sleeper = try Subprocess(["sleep", "30"], stdin: .null, stdout: .null)
        XCTAssertNil(try sleeper.wait(timeout: 0.05))
        sleeper.kill(SIGKILL)
        XCTAssertEqual(try withTimeout(10) { try sleeper.wait() }, .signaled(SIGKILL))
    }

    func testAProgramThatDoesNotExistFailsToStartWithItsName() throws {
        XCTAssertThrowsError(try Subprocess(["no-such-program-swift-green"])) { error in
            XCTAssertTrue("\(error)".contains("no-such-program-swift-green"), "\(error)")
        }
    }

    func testAChildReleasedWithoutWaitLeavesNoZombie() throws {
        var pid: pid_t = 0
        do {
            let child = try Subprocess(["true"], stdin: .null, stdout: .null)
            pid = child.pid
        }
        // Reaped in the background: waitpid finds no such child at last.
        var gone = false
        for _ in 0..<500 where !gone {
            var raw: Int32 = 0
            gone = waitpid(pid, &raw, WNOHANG) < 0 && errno == ECHILD
            if !gone { try Green.sleep(0.01) }
        }
        XCTAssertTrue(gone)
    }

    func testAPipelineOfTwoProcessesCarriesData() throws {
        let upper = try Subprocess(["tr", "a-z", "A-Z"])
        let counter = try Subprocess(["wc", "-c"])
        let feeder = spawn {
            defer { upper.stdin!.close() }
            try upper.stdin!.sendAll("hello pipeline\n")
        }
        let pump = spawn {
            defer { counter.stdin!.close() }
            while true {
                let chunk = try upper.stdout!.recv()
                if chunk.isEmpty { return }
                try counter.stdin!.sendAll(chunk)
            }
        }
        var out: [UInt8] = []
        try withTimeout(10) {
            while true {
                let chunk = try counter.stdout!.recv()
                if chunk.isEmpty { break }
                out += chunk
            }
            try counter.wait()
        }
        try joinAll([feeder, pump], raiseError: true)
        try withTimeout(10) { try upper.wait() }
        XCTAssertEqual(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), "15")
    }
}
