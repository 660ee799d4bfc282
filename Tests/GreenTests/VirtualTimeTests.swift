import Glibc
import Green
import XCTest
import GreenTestSupport

/// Virtual time: the clock jumps to the next timer when nothing can run
/// and nothing outside is awaited; timers fire in deadline order; an fd
/// wait holds the clock; real time takes over at the end.
final class VirtualTimeTests: GreenTestCase {
    func testAnHourLongTimeoutExpiresExactlyAndAtOnce() throws {
        try withVirtualTime {
            let hub = Hub.current
            XCTAssertTrue(hub.isVirtualTime)
            let start = hub.now
            let event = Event()
            XCTAssertThrowsError(try withTimeout(3600) { try event.wait() }) { error in
                XCTAssertTrue(error is TimeoutError, "\(error)")
            }
            XCTAssertEqual(hub.now - start, 3600, accuracy: 1e-6)
        }
        XCTAssertFalse(Hub.current.isVirtualTime)
    }

    func testTimersFireInDeadlineOrderAtTheirDeadlines() throws {
        try withVirtualTime {
            let hub = Hub.current
            let start = hub.now
            var fired: [(String, Double)] = []
            let sleepers = [("five", 5.0), ("one-a", 1.0), ("three", 3.0), ("one-b", 1.0)].map { name, seconds in
                spawn {
                    try Green.sleep(seconds)
                    fired.append((name, hub.now - start))
                }
            }
            let late = spawn(after: 4) { fired.append(("after-4", hub.now - start)) }
            try joinAll(sleepers + [late], raiseError: true)
            XCTAssertEqual(fired.map(\.0), ["one-a", "one-b", "three", "after-4", "five"])
            for ((_, at), expected) in zip(fired, [1.0, 1, 3, 4, 5]) {
                XCTAssertEqual(at, expected, accuracy: 1e-6)
            }
        }
    }

    /// A retry loop backing off exponentially for more than a year of
    /// virtual time.
    func testAnExponentialBackoffRunsThroughInNoTime() throws {
        try withVirtualTime {
            let start = Hub.current.now
            var delay = 0.05
            var attempts = 0
            while attempts < 30 {
                attempts += 1
                try Green.sleep(delay)
                delay *= 2
            }
            let total = 0.05 * (Double(1 << 30) - 1)
            XCTAssertEqual(Hub.current.now - start, total, accuracy: total * 1e-9)
        }
    }

    func testNestedTimeoutsEachExpireAtTheirOwnDeadline() throws {
        try withVirtualTime {
            let start = Hub.current.now
            let outer = Timeout(10)
            outer.start()
            defer { outer.cancel() }
            do {
                try withTimeout(20) { try Green.sleep(30) }
                XCTFail("no timeout")
            } catch let error as TimeoutError {
                XCTAssertTrue(error.isFrom(outer), "the outer, earlier one")
            }
            XCTAssertEqual(Hub.current.now - start, 10, accuracy: 1e-6)
        }
    }

    /// While a greenlet waits on an fd, time runs at the real pace (the
    /// peer cannot be hurried); once nothing outside is awaited, it jumps
    /// again.
    func testAnFDWaitHoldsTheClockUntilItEnds() throws {
        let (a, b) = try connectedSocketPair()
        defer { a.close(); b.close() }
        try withVirtualTime {
            let hub = Hub.current
            let reader = spawn { () throws -> [UInt8] in try a.recv() }
            try letOthersRun()
            XCTAssertTrue(reader.isStarted && !reader.isReady)
            let realStart = monotonicNow()
            let start = hub.now
            try Green.sleep(0.05)
            XCTAssertGreaterThanOrEqual(monotonicNow() - realStart, 0.05, "no jump while the reader waits")
            XCTAssertGreaterThanOrEqual(hub.now - start, 0.05)
            try b.sendAll("x")
            XCTAssertEqual(try reader.get(), Array("x".utf8))
            let afterRead = hub.now
            try Green.sleep(3600)
            XCTAssertEqual(hub.now - afterRead, 3600, accuracy: 0.01, "jumps again")
        }
    }

    func testAdvancingMovesTheClockWithoutRunningAnything() throws {
        XCTAssertThrowsError(try Hub.current.advanceVirtualTime(by: 1)) { error in
            XCTAssertEqual("\(error)", "\(GreenError.notVirtualTime)")
        }
        try withVirtualTime {
            let hub = Hub.current
            let start = hub.now
            var woke: Double?
            let sleeper = spawn { try Green.sleep(5); woke = hub.now - start }
            try letOthersRun()
            try hub.advanceVirtualTime(by: 10)
            XCTAssertNil(woke, "nothing runs while the clock moves")
            try sleeper.join()
            XCTAssertEqual(woke ?? 0, 10, accuracy: 1e-6, "the due timer fired at the next poll, at the new time")
        }
    }

    /// Timers still pending when the virtual clock ends go on in real time
    /// for what they had left; the clock does not go back.
    func testPendingTimersContinueOnTheRealClock() throws {
        let hub = Hub.current
        var sleeper: Greenlet<Void>!
        var virtualEnd = 0.0
        withVirtualTime {
            sleeper = spawn { try Green.sleep(0.05) }
            virtualEnd = hub.now
        }
        try withTimeout(10) { try sleeper.get() }
        XCTAssertGreaterThanOrEqual(hub.nowUpdated(), virtualEnd)
    }

    /// On a thread of its own: its hub has no timer left by other tests
    /// (a cancelled `Task.sleep` leaves one until its deadline).
    func testADeadlockIsStillReportedOnVirtualTime() throws {
        let outcome = onOwnThread { () throws -> String in
            try withVirtualTime { try waitForAnEventNobodySets() }
        }
        XCTAssertEqual(outcome, "deadlock reported")
    }
}
