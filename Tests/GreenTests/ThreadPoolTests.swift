import Foundation
import Glibc
import Green
import XCTest
import GreenTestSupport

final class ThreadPoolTests: GreenTestCase {
    func testRunReturnsTheValueAndRethrowsTheError() throws {
        let pool = ThreadPool(size: 2)
        XCTAssertEqual(try pool.run { 6 * 7 }, 42)
        XCTAssertThrowsError(try pool.run { () throws -> Int in throw TestError("on a thread") }) {
            XCTAssertEqual($0 as? TestError, TestError("on a thread"))
        }
    }

    func testAHundredBlockingCallsOnTenThreadsRunTenAtATimeWhileTheHubStaysResponsive() throws {
        let pool = ThreadPool(size: 10)
        let concurrency = ConcurrencyGauge()
        let (elapsed, ticks) = try countingTicks(every: 0.01) { () throws -> Double in
            let start = Hub.current.nowUpdated()
            let calls = (0..<100).map { _ in
                spawn { try pool.run { concurrency.enter(); usleep(100_000); concurrency.leave() } }
            }
            try withTimeout(30) { try joinAll(calls, raiseError: true) }
            return Hub.current.nowUpdated() - start
        }
        XCTAssertEqual(concurrency.maximum, 10)
        // Ten rounds of 0.1 s cannot take less than a second.
        XCTAssertGreaterThanOrEqual(elapsed, 0.95)
        // The hub ran the ticker meanwhile (about every 10 ms).
        XCTAssertGreaterThan(ticks, 20)
    }

    func testAKilledWaiterStopsWaitingWhileItsCallFinishesOnTheThread() throws {
        let pool = ThreadPool(size: 1)
        let finished = AsyncResult<Bool>()
        let g = spawn { try pool.run { usleep(50_000); finished.set(true) } }
        try Green.sleep(0)
        try withTimeout(5) { try g.kill() }
        XCTAssertTrue(g.error is GreenletExit)
        XCTAssertEqual(try finished.get(timeout: 5), true)
    }
}

/// Counts how many threads are inside at once; any thread.
final class ConcurrencyGauge: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    private(set) var maximum = 0

    func enter() {
        lock.lock()
        current += 1
        maximum = max(maximum, current)
        lock.unlock()
    }

    func leave() {
        lock.lock()
        current -= 1
        lock.unlock()
    }
}
