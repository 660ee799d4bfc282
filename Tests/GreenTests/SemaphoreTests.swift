import Glibc
import Green
import XCTest
import GreenTestSupport

/// `Semaphore` and `BoundedSemaphore`: permits, FIFO hand-off, timeouts,
/// kills, and the deadlock report.
final class SemaphoreTests: VirtualTimeTestCase {
    // MARK: - Permits

    func testAcquireTakesAPermitAndReleaseGivesItBack() throws {
        let s = Semaphore(value: 2)
        XCTAssertEqual(s.value, 2)
        XCTAssertFalse(s.isLocked)
        XCTAssertTrue(try s.acquire())
        XCTAssertEqual(s.value, 1)
        XCTAssertTrue(try s.acquire())
        XCTAssertEqual(s.value, 0)
        XCTAssertTrue(s.isLocked)
        s.release()
        s.release()
        XCTAssertEqual(s.value, 2)
    }

    func testTryAcquireTakesAFreePermitAndNeverWaits() throws {
        let s = Semaphore(value: 1)
        XCTAssertTrue(s.tryAcquire())
        XCTAssertFalse(s.tryAcquire())
        XCTAssertEqual(s.value, 0)
        s.release()
        XCTAssertEqual(s.value, 1)
    }

    func testAReleaseWithoutWaitersAddsAPermitAboveTheInitialValue() throws {
        let s = Semaphore(value: 0)
        s.release()
        s.release()
        XCTAssertEqual(s.value, 2)
        XCTAssertTrue(try s.acquire(timeout: 0))
        XCTAssertTrue(try s.acquire(timeout: 0))
        XCTAssertEqual(s.value, 0)
    }

    func testAcquireWithTimeoutReturnsFalseWhenNoPermitComesAndLeavesNoWaiterBehind() throws {
        let s = Semaphore(value: 0)
        XCTAssertFalse(try s.acquire(timeout: 0.01))
        XCTAssertEqual(s.value, 0)
        // Nobody is left in the wait list to swallow the next permit.
        s.release()
        XCTAssertEqual(s.value, 1)
    }

    func testWithPermitReleasesThePermitWhenTheBodyThrows() throws {
        let s = Semaphore(value: 1)
        XCTAssertThrowsError(try s.withPermit { () throws -> Int in
            XCTAssertEqual(s.value, 0)
            throw TestError("body")
        }) { XCTAssertEqual($0 as? TestError, TestError("body")) }
        XCTAssertEqual(s.value, 1)
        XCTAssertEqual(try s.withPermit { s.value }, 0)
        XCTAssertEqual(s.value, 1)
    }

    func testWithPermitLetsAtMostValueGreenletsInAtOnce() throws {
        let s = Semaphore(value: 3)
        var inside = 0
        var most = 0
        var done = 0
        let gs = (0..<12).map { _ in
            spawn {
                try s.withPermit {
                    inside += 1
                    most = max(most, inside)
                    try Green.sleep(0)
                    try Green.sleep(0)
                    inside -= 1
                    done += 1
                }
            }
        }
        defer { cleanUp(gs) }
        _ = try withTimeout(5) { try joinAll(gs, raiseError: true) }
        XCTAssertEqual(done, 12)
        XCTAssertEqual(most, 3)
        XCTAssertEqual(s.value, 3)
    }

    // MARK: - FIFO hand-off

    func testWaitersGetPermitsInTheOrderTheyStartedWaiting() throws {
        let s = Semaphore(value: 0)
        var order: [Int] = []
        let gs = (0..<5).map { i in spawn { try s.acquire(); order.append(i) } }
        defer { cleanUp(gs) }
        try Green.sleep(0)
        XCTAssertEqual(order, [])
        for n in 1...5 {
            s.release()
            try Green.sleep(0)
            XCTAssertEqual(order, Array(0..<n), "after \(n) release(s)")
        }
        _ = try withTimeout(5) { try joinAll(gs) }
        XCTAssertEqual(s.value, 0)
    }

    func testAReleasedPermitGoesToTheWaiterNotToAGreenletThatDidNotWait() throws {
        let s = Semaphore(value: 0)
        var got = false
        let g = spawn { try s.acquire(); got = true }
        defer { cleanUp([g]) }
        try Green.sleep(0)
        s.release()
        // The permit is already the waiter's, though it has not run yet.
        XCTAssertFalse(s.tryAcquire())
        XCTAssertFalse(try s.acquire(timeout: 0.01))
        XCTAssertEqual(s.value, 0)
        _ = try withTimeout(5) { try g.join() }
        XCTAssertTrue(got)
        XCTAssertEqual(s.value, 0)
    }

    // MARK: - Timeouts

    func testAWaiterThatTimesOutLeavesTheWaitListSoTheNextReleasesWakeTheOthersInOrder() throws {
        let s = Semaphore(value: 0)
        try checkATimedOutWaiterLeavesTheLine(of: s, giveBack: false) { log in
            s.release()
            try Green.sleep(0)
            XCTAssertEqual(log.entries, ["middle false", "first"])
            s.release()
        }
        // Exactly two permits were handed out: none lost, none doubled.
        XCTAssertEqual(s.value, 0)
        s.release()
        XCTAssertEqual(s.value, 1)
    }

    func testAWaiterInterruptedByAnEnclosingTimeoutLeavesTheWaitList() throws {
        let s = Semaphore(value: 0)
        try checkATimedOutWaiterLeavesTheLine(
            first: { log in try s.acquire(); log("first") },
            middle: { log in
                do {
                    _ = try withTimeout(0.01) { try s.acquire() }
                    log("middle acquired")
                } catch is TimeoutError {
                    log("middle timed out")
                }
            },
            last: { log in try s.acquire(); log("last") },
            timedOut: "middle timed out",
            serve: { _ in
                s.release()
                s.release()
            },
            served: ["first", "last"])
        XCTAssertEqual(s.value, 0)
    }

    func testATimeoutThatExpiresAfterThePermitWasGrantedDoesNotLoseThePermit() throws {
        let s = Semaphore(value: 0)
        let acquired = try checkATimeoutAfterTheGrantTakesNothingBack(
            wait: { try s.acquire() },
            afterwards: { acquired in if acquired == true { s.release() } },
            grant: { s.release() })
        XCTAssertEqual(acquired, true)
        XCTAssertEqual(s.value, 1)
    }

    // MARK: - Kills

    func testAWaiterKilledWhileWaitingHoldsNoPermitAndTheNextWaiterGetsTheRelease() throws {
        let s = Semaphore(value: 0)
        try checkAKilledWaiterGetsNothing(of: s, killBlocking: true, giveBack: false) {
            XCTAssertEqual(s.value, 0)
        }
        XCTAssertEqual(s.value, 0)
        s.release()
        XCTAssertEqual(s.value, 1)
    }

    func testAReleaseRightAfterAKillSkipsTheKilledWaiterThatHasNotRunYet() throws {
        let s = Semaphore(value: 0)
        // The victim is made ready to throw but is still first in the list.
        try checkAKilledWaiterGetsNothing(of: s, killBlocking: false, giveBack: false)
        XCTAssertEqual(s.value, 0)
    }

    func testAReleaseWhenTheOnlyWaiterWasKilledBeforeItRanKeepsThePermit() throws {
        let s = Semaphore(value: 0)
        try checkAReleaseSkipsAKilledOnlyWaiter(of: s) { XCTAssertEqual(s.value, 1) }
    }

    func testAKillThatArrivesAfterThePermitWasGrantedDoesNotLoseThePermit() throws {
        let s = Semaphore(value: 0)
        let acquired = try checkAKillAfterTheGrantTakesNothingBack(
            wait: { try s.acquire() },
            grant: { s.release() },
            beforeItRuns: { XCTAssertEqual(s.value, 0) },
            onKill: { s.release() })
        XCTAssertEqual(acquired, true)
        XCTAssertEqual(s.value, 1)
    }

    // MARK: - Deadlock report

    func testAcquiringAPermitNobodyCanReleaseThrowsWouldBlockForever() throws {
        let s = Semaphore(value: 0)
        XCTAssertThrowsError(try s.acquire()) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, let parked) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "Semaphore.acquire")
            XCTAssertEqual(parked, [])
        }
        // The reported waiter left the list.
        s.release()
        XCTAssertEqual(s.value, 1)
    }

    // MARK: - BoundedSemaphore

    func testBoundedSemaphoreReleaseAboveTheInitialValueThrowsOverReleased() throws {
        let s = BoundedSemaphore(value: 2)
        XCTAssertEqual(s.bound, 2)
        XCTAssertThrowsError(try s.release()) {
            XCTAssertEqual($0 as? SyncError, .overReleased(bound: 2))
        }
        XCTAssertEqual(s.value, 2)
        try s.acquire()
        try s.release()
        XCTAssertThrowsError(try s.release()) {
            XCTAssertEqual($0 as? SyncError, .overReleased(bound: 2))
        }
        XCTAssertEqual(s.value, 2)
    }

    func testBoundedSemaphoreAcquiresAndReleasesWithinItsBound() throws {
        let s = BoundedSemaphore(value: 2)
        XCTAssertTrue(try s.acquire())
        XCTAssertTrue(s.tryAcquire())
        XCTAssertTrue(s.isLocked)
        XCTAssertFalse(s.tryAcquire())
        XCTAssertFalse(try s.acquire(timeout: 0.01))
        try s.release()
        try s.release()
        XCTAssertEqual(s.value, 2)
        XCTAssertFalse(s.isLocked)
    }

    func testBoundedSemaphoreHandsAReleaseToAWaiterAndStillRefusesAnExtraRelease() throws {
        let s = BoundedSemaphore(value: 1)
        try s.acquire()
        var got = false
        let w = spawn {
            try s.acquire()
            got = true
            try s.release()
        }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        XCTAssertFalse(got)
        try s.release()            // to the waiter
        XCTAssertEqual(s.value, 0)
        _ = try withTimeout(5) { try w.join() }
        XCTAssertTrue(w.isSuccessful)
        XCTAssertTrue(got)
        XCTAssertEqual(s.value, 1)
        XCTAssertThrowsError(try s.release()) {
            XCTAssertEqual($0 as? SyncError, .overReleased(bound: 1))
        }
    }

    func testBoundedSemaphoreWithPermitReleasesWhenTheBodyThrows() throws {
        let s = BoundedSemaphore(value: 1)
        XCTAssertThrowsError(try s.withPermit { () throws -> Void in throw TestError("x") })
        XCTAssertEqual(s.value, 1)
        XCTAssertThrowsError(try s.release())
    }
}

