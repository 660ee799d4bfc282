import Foundation
import Green
import Synchronization
import XCTest
import GreenTestSupport

/// Swift Concurrency and greenlets, both ways; hubs on other threads.
final class BridgeTests: GreenTestCase {
    func testAGreenletAwaitsAnAsyncFunctionWhileTheHubRunsOthers() throws {
        let (value, ticks) = try countingTicks(every: 0.001) {
            try withTimeout(10) {
                try awaitAsync { () async throws -> Int in
                    try await Task.sleep(nanoseconds: 50_000_000)
                    return 42
                }
            }
        }
        XCTAssertEqual(value, 42)
        XCTAssertGreaterThan(ticks, 5)
    }

    func testAnAsyncErrorIsRethrownInTheGreenlet() throws {
        XCTAssertThrowsError(try withTimeout(10) {
            try awaitAsync { () async throws -> Int in throw TestError("async") }
        }) { XCTAssertEqual($0 as? TestError, TestError("async")) }
    }

    func testATimeoutAroundAwaitAsyncCancelsTheTask() throws {
        let cancelled = AsyncResult<Bool>()
        let outcome = try withTimeout(0.05, otherwise: { "timed out" }) {
            try awaitAsync { () async -> String in
                do {
                    // Longer than the timeout, both on this hub's timers
                    // (so the timeout fires first), and short: a cancelled
                    // Task.sleep leaves its timer until its deadline, and a
                    // pending timer on the shared hub would hold off the
                    // deadlock checks of the tests after this one.
                    try await Task.sleep(nanoseconds: 300_000_000)
                    return "slept"
                } catch {
                    cancelled.set(Task.isCancelled)
                    return "cancelled"
                }
            }
        }
        XCTAssertEqual(outcome, "timed out")
        XCTAssertEqual(try cancelled.get(timeout: 10), true)
    }

    func testAsyncCodeAwaitsAGreenletOnAHubThread() throws {
        try withAHubThread(named: "bridge-test") { handle in
            let result = try awaitAsync { () async throws -> Int in
                try await handle.run {
                    try Green.sleep(0.01)
                    return 7
                }
            }
            XCTAssertEqual(result, 7)
            XCTAssertThrowsError(try awaitAsync { () async throws -> Int in
                try await handle.run { () throws -> Int in throw TestError("green") }
            }) { XCTAssertEqual($0 as? TestError, TestError("green")) }
        }
    }

    func testCancellingTheTaskKillsTheGreenletItAwaits() throws {
        try withAHubThread(named: "bridge-cancel") { handle in
            let started = AsyncResult<Bool>()
            let cleanedUp = AsyncResult<Bool>()
            let outcome = try awaitAsync { () async -> String in
                let task = Task {
                    try await handle.run { () throws -> String in
                        defer { cleanedUp.set(true) }
                        started.set(true)
                        try Green.sleep(60)
                        return "slept"
                    }
                }
                while !started.isReady { await Task.yield() }
                task.cancel()
                do {
                    return try await task.value
                } catch {
                    return "\(type(of: error))"
                }
            }
            XCTAssertEqual(outcome, "GreenletExit")
            XCTAssertEqual(try cleanedUp.get(timeout: 10), true)
        }
    }

    func testAHandleSpawnsOnItsHubFromAnotherThread() throws {
        try withAHubThread(named: "spawn-target") { handle in
            let ran = AsyncResult<Bool>()
            Thread.detachNewThread {
                handle.spawn { ran.set(true) }
            }
            XCTAssertEqual(try ran.get(timeout: 10), true)
        }
    }

    func testAHandleToAnEndedHubRefusesWork() throws {
        let hub = try HubThread.start(name: "short-lived")
        hub.stop()
        XCTAssertTrue(try hub.join(timeout: 10))
        // The thread exits right after; give it the moment to.
        var refused = false
        for _ in 0..<1_000 where !refused {
            refused = !hub.handle.spawn {}
            if !refused { usleep(1_000) }
        }
        XCTAssertTrue(refused)
    }
}
