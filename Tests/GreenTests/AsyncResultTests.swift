import Dispatch
import Foundation
import Glibc
@testable import Green
import Synchronization
import XCTest
import GreenTestSupport

/// `AsyncResult`: a value or error that arrives once, from any thread, and
/// wakes greenlets waiting on any hub (or a plain thread).
final class AsyncResultTests: GreenTestCase {
    // MARK: - Across threads

    func testSetFromEightOSThreadsWakesEightGreenletsWaitingOnTheMainHub() throws {
        let results = (0..<8).map { _ in AsyncResult<Int>() }
        var got = [Int?](repeating: nil, count: 8)
        let waiters = (0..<8).map { i in spawn { got[i] = try results[i].get() } }
        defer { cleanUp(waiters) }
        try Green.sleep(0)
        XCTAssertEqual(got, [Int?](repeating: nil, count: 8))

        let go = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let refusedSets = Shared<Int>(0)
        for i in 0..<8 {
            let result = results[i]
            Thread {
                _ = go.wait(timeout: .now() + 30)
                if !result.set(100 + i) { refusedSets.update { $0 += 1 } }
                done.signal()
            }.start()
        }
        // Let all eight threads loose at once.
        for _ in 0..<8 { go.signal() }
        _ = try withTimeout(10) { try joinAll(waiters, raiseError: true) }
        XCTAssertEqual(got, (0..<8).map { 100 + $0 })
        for _ in 0..<8 { XCTAssertEqual(done.wait(timeout: .now() + 10), .success) }
        XCTAssertEqual(refusedSets.get(), 0)
    }

    func testOneResultSetFromAnotherThreadWakesEveryGreenletWaitingOnIt() throws {
        let result = AsyncResult<String>()
        let done = DispatchSemaphore(value: 0)
        let got = try whatWaitersGet(from: result, count: 10) {
            Thread {
                result.set("hello")
                done.signal()
            }.start()
        }
        XCTAssertEqual(got, [String](repeating: "hello", count: 10))
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
    }

    func testAFailFromAnotherThreadIsThrownByEveryWaiter() throws {
        let result = AsyncResult<Int>()
        let waiters = (0..<3).map { _ in spawn { () throws -> Int in try result.get() } }
        defer { cleanUp(waiters) }
        try Green.sleep(0)
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.fail(TestError("remote"))
            done.signal()
        }.start()
        _ = try withTimeout(10) { try joinAll(waiters) }
        for w in waiters {
            XCTAssertThrowsError(try w.get()) { XCTAssertEqual($0 as? TestError, TestError("remote")) }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
    }

    // The two tests below wait with no timer on the waiting hub (a timer
    // would hide a false deadlock report), so they run on a thread of
    // their own: if the wait never ended, only that thread would hang.

    func testAGreenletWaitingForAnotherThreadIsNotReportedAsDeadlocked() throws {
        let outcome = onOwnThread { () throws -> Int in
            let result = AsyncResult<Int>()
            Thread {
                // Once the waiter is parked with nothing else alive on its
                // hub.
                waitForWaiter(result)
                result.set(7)
            }.start()
            // No timer and no other greenlet on this hub: only the wait
            // for the other thread keeps this from being a deadlock.
            return try result.get()
        }
        XCTAssertEqual(outcome, "7")
    }

    func testASpawnedGreenletWaitingForAnotherThreadIsNotReportedAsDeadlocked() throws {
        let outcome = onOwnThread { () throws -> Int in
            let result = AsyncResult<Int>()
            let waiter = spawn { () throws -> Int in try result.get() }
            try Green.sleep(0)
            Thread {
                waitForWaiter(result)
                result.set(8)
            }.start()
            // The thread's main greenlet joins (no timer): the waiter's
            // remote wait is what keeps the hub alive.
            return try waiter.get()
        }
        XCTAssertEqual(outcome, "8")
    }

    func testAPlainOSThreadCanWaitForAResultTheMainThreadSets() throws {
        let result = AsyncResult<String>()
        let received = Shared<String?>(nil)
        let started = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread {
            started.signal()
            // No greenlet was ever spawned on this thread.
            let value: String?
            do {
                value = try result.get(timeout: 10)
            } catch {
                value = "error: \(error)"
            }
            received.set(value)
            done.signal()
        }.start()
        XCTAssertEqual(started.wait(timeout: .now() + 10), .success)
        waitForWaiter(result)
        XCTAssertTrue(result.set("from main"))
        XCTAssertEqual(done.wait(timeout: .now() + 15), .success)
        XCTAssertEqual(received.get(), "from main")
    }

    func testGreenletsOnAnotherThreadsHubWaitForAResultSetHere() throws {
        let result = AsyncResult<Int>()
        let sum = Shared<Int>(0)
        let parked = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread {
            var total = 0
            do {
                let gs = (0..<4).map { _ in spawn { () throws -> Int in try result.get() } }
                try Green.sleep(0)
                parked.signal()
                for g in gs { total += try g.get(timeout: 10) }
            } catch {
                total = -1
            }
            sum.set(total)
            done.signal()
        }.start()
        XCTAssertEqual(parked.wait(timeout: .now() + 10), .success)
        result.set(5)
        XCTAssertEqual(done.wait(timeout: .now() + 15), .success)
        XCTAssertEqual(sum.get(), 20)
    }

    // MARK: - On one thread

    func testSetOnTheSameThreadWakesEveryWaitingGreenlet() throws {
        let result = AsyncResult<Int>()
        let got = try whatWaitersGet(from: result, count: 5) {
            XCTAssertFalse(result.isReady)
            XCTAssertTrue(result.set(3))
        }
        XCTAssertEqual(got, [3, 3, 3, 3, 3])
    }

    func testGetReturnsAValueThatArrivedBeforeAtOnce() throws {
        let result = AsyncResult<Int>()
        result.set(1)
        XCTAssertTrue(result.isReady)
        XCTAssertEqual(result.value, 1)
        XCTAssertNil(result.error)
        XCTAssertEqual(try result.get(), 1)
        XCTAssertEqual(try result.get(timeout: 0), 1)
        XCTAssertTrue(try result.wait())
    }

    func testGetRethrowsTheErrorGivenToFail() throws {
        let result = AsyncResult<Int>()
        XCTAssertTrue(result.fail(TestError("failed")))
        XCTAssertTrue(result.isReady)
        XCTAssertNil(result.value)
        XCTAssertEqual(result.error as? TestError, TestError("failed"))
        XCTAssertThrowsError(try result.get()) { XCTAssertEqual($0 as? TestError, TestError("failed")) }
        // wait only says that it arrived.
        XCTAssertTrue(try result.wait())
    }

    func testOnlyTheFirstSetOrFailCounts() throws {
        let result = AsyncResult<Int>()
        XCTAssertTrue(result.set(1))
        XCTAssertFalse(result.set(2))
        XCTAssertFalse(result.fail(TestError("late")))
        XCTAssertEqual(try result.get(), 1)

        let failed = AsyncResult<Int>()
        XCTAssertTrue(failed.fail(TestError("first")))
        XCTAssertFalse(failed.set(9))
        XCTAssertThrowsError(try failed.get()) { XCTAssertEqual($0 as? TestError, TestError("first")) }
    }

    func testOnlyOneOfManyThreadsRacingToSetWins() throws {
        let result = AsyncResult<Int>()
        let wins = Shared<Int>(0)
        let done = DispatchSemaphore(value: 0)
        for i in 0..<8 {
            Thread {
                if result.set(i) { wins.update { $0 += 1 } }
                done.signal()
            }.start()
        }
        let value = try withTimeout(10) { try result.get() }
        for _ in 0..<8 { XCTAssertEqual(done.wait(timeout: .now() + 10), .success) }
        XCTAssertEqual(wins.get(), 1)
        XCTAssertTrue((0..<8).contains(value))
        XCTAssertEqual(result.value, value)
    }

    func testGetWithTimeoutThrowsTimeoutErrorWhenNothingArrives() throws {
        let result = AsyncResult<Int>()
        XCTAssertThrowsError(try result.get(timeout: 0.01)) { error in
            XCTAssertTrue(error is TimeoutError, "\(error)")
        }
        XCTAssertFalse(try result.wait(timeout: 0.01))
        XCTAssertFalse(result.isReady)
        // The result still works after the timed-out waits.
        result.set(4)
        XCTAssertEqual(try result.get(timeout: 0.01), 4)
    }

    func testAnEnclosingTimeoutInterruptsGet() throws {
        let result = AsyncResult<Int>()
        XCTAssertThrowsError(try withTimeout(0.01) { try result.get() }) {
            XCTAssertTrue($0 is TimeoutError, "\($0)")
        }
    }

    func testAKilledWaiterLeavesTheResultUsableForTheOthers() throws {
        let result = AsyncResult<Int>()
        let got = try checkAKilledWaiterGetsNothing(killBlocking: true, wait: { _ in try result.get() }) {
            XCTAssertTrue(result.set(6))
        }
        XCTAssertEqual(got, 6)
    }

    func testAWaitThatEndedNoLongerKeepsTheHubFromReportingADeadlock() throws {
        // On a thread of its own: if the ended waits still kept the hub
        // alive, the last wait would hang that thread only.
        let outcome = onOwnThread { () throws -> String in
            let result = AsyncResult<Int>()
            _ = try result.wait(timeout: 0.01)
            let victim = spawn { () throws -> Int in try result.get() }
            try Green.sleep(0)
            try victim.kill()
            return try waitForAnEventNobodySets()
        }
        XCTAssertEqual(outcome, "deadlock reported")
    }
}

/// `count` greenlets wait on `result`; once they all wait, `set` runs (to
/// set it, from here or from another thread). Returns what each got, in
/// the order they got it.
private func whatWaitersGet<T>(from result: AsyncResult<T>, count: Int, set: () throws -> Void) throws -> [T] {
    var got: [T] = []
    let waiters = (0..<count).map { _ in spawn { got.append(try result.get()) } }
    defer { cleanUp(waiters) }
    try Green.sleep(0)
    try set()
    _ = try withTimeout(10) { try joinAll(waiters, raiseError: true) }
    return got
}

/// Blocks the calling OS thread until `result` has a waiter (at most 10 s,
/// checked every millisecond): the set that follows then wakes a waiter,
/// the path these tests are about, rather than finding none.
private func waitForWaiter<T>(_ result: AsyncResult<T>) {
    let deadline = monotonicNow() + 10
    while result.waiterCount == 0 && monotonicNow() < deadline { usleep(1_000) }
}
