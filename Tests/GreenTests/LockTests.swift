import Glibc
import Green
import XCTest
import GreenTestSupport

/// `Lock` (not re-entrant, anyone may release) and `RLock` (re-entrant,
/// owned): FIFO hand-off, timeouts, kills, misuse and the deadlock report.
final class LockTests: VirtualTimeTestCase {
    // MARK: - Lock basics

    func testAcquireAndReleaseToggleIsLocked() throws {
        let lock = Lock()
        XCTAssertFalse(lock.isLocked)
        XCTAssertTrue(try lock.acquire())
        XCTAssertTrue(lock.isLocked)
        try lock.release()
        XCTAssertFalse(lock.isLocked)
    }

    func testTryAcquireFailsWhileTheLockIsHeld() throws {
        let lock = Lock()
        XCTAssertTrue(lock.tryAcquire())
        XCTAssertFalse(lock.tryAcquire())
        try lock.release()
        XCTAssertTrue(lock.tryAcquire())
        try lock.release()
    }

    func testReleasingAnUnlockedLockThrowsNotLocked() throws {
        let lock = Lock()
        XCTAssertThrowsError(try lock.release()) {
            XCTAssertEqual($0 as? SyncError, .notLocked("Lock"))
        }
        try lock.acquire()
        try lock.release()
        XCTAssertThrowsError(try lock.release()) {
            XCTAssertEqual($0 as? SyncError, .notLocked("Lock"))
        }
        XCTAssertFalse(lock.isLocked)
    }

    func testAnyGreenletMayReleaseALockAnotherOneTook() throws {
        let lock = Lock()
        let taker = spawn { try lock.acquire() }
        defer { cleanUp([taker]) }
        _ = try withTimeout(5) { try taker.get() }
        XCTAssertTrue(lock.isLocked)
        try lock.release()
        XCTAssertFalse(lock.isLocked)
    }

    func testAcquireWithTimeoutReturnsFalseWhileTheLockIsHeld() throws {
        let lock = Lock()
        try lock.acquire()
        let g = spawn { () throws -> Bool in try lock.acquire(timeout: 0.01) }
        defer { cleanUp([g]) }
        XCTAssertEqual(try withTimeout(5) { try g.get() }, false)
        XCTAssertTrue(lock.isLocked)
        try lock.release()
        // Nobody is left waiting: the lock is free, not handed to a ghost.
        XCTAssertFalse(lock.isLocked)
    }

    func testWithLockReleasesTheLockWhenTheBodyThrows() throws {
        let lock = Lock()
        XCTAssertThrowsError(try lock.withLock { () throws -> Void in
            XCTAssertTrue(lock.isLocked)
            throw TestError("body")
        }) { XCTAssertEqual($0 as? TestError, TestError("body")) }
        XCTAssertFalse(lock.isLocked)
        XCTAssertEqual(try lock.withLock { 7 }, 7)
        XCTAssertFalse(lock.isLocked)
    }

    func testWithLockExcludesOtherGreenletsAcrossBlockingPoints() throws {
        let lock = Lock()
        var inside = 0
        var most = 0
        var total = 0
        let gs = (0..<10).map { _ in
            spawn {
                for _ in 0..<3 {
                    try lock.withLock {
                        inside += 1
                        most = max(most, inside)
                        let seen = total
                        try Green.sleep(0)
                        total = seen + 1
                        inside -= 1
                    }
                }
            }
        }
        defer { cleanUp(gs) }
        _ = try withTimeout(5) { try joinAll(gs, raiseError: true) }
        XCTAssertEqual(most, 1)
        XCTAssertEqual(total, 30)
        XCTAssertFalse(lock.isLocked)
    }

    // MARK: - Lock: FIFO hand-off

    func testLockWaitersGetTheLockInTheOrderTheyStartedWaiting() throws {
        let lock = Lock()
        try lock.acquire()
        var order: [Int] = []
        let gs = (0..<5).map { i in
            spawn {
                try lock.acquire()
                order.append(i)
                try Green.sleep(0)
                try lock.release()
            }
        }
        defer { cleanUp(gs) }
        try Green.sleep(0)
        XCTAssertEqual(order, [])
        try lock.release()
        _ = try withTimeout(5) { try joinAll(gs, raiseError: true) }
        XCTAssertEqual(order, [0, 1, 2, 3, 4])
        XCTAssertFalse(lock.isLocked)
    }

    func testReleaseHandsTheLockStraightToTheFirstWaiter() throws {
        let lock = Lock()
        try lock.acquire()
        var got = false
        let w = spawn { try lock.acquire(); got = true; try lock.release() }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        try lock.release()
        // Still locked: it now belongs to the waiter, which has not run.
        XCTAssertTrue(lock.isLocked)
        XCTAssertFalse(lock.tryAcquire())
        XCTAssertFalse(got)
        _ = try withTimeout(5) { try w.join() }
        XCTAssertTrue(w.isSuccessful)
        XCTAssertTrue(got)
        XCTAssertFalse(lock.isLocked)
    }

    // MARK: - Lock: timeouts

    func testALockWaiterThatTimesOutLeavesTheWaitListSoTheNextReleasesServeTheOthersInOrder() throws {
        let lock = Lock()
        try lock.acquire()
        var log: [String] = []
        let first = spawn { try lock.acquire(); log.append("first"); try lock.release() }
        let middle = spawn { () throws -> Bool in
            let got = try lock.acquire(timeout: 0.01)
            log.append("middle \(got)")
            return got
        }
        let last = spawn { try lock.acquire(); log.append("last"); try lock.release() }
        defer { cleanUp([first, middle, last]) }
        try Green.sleep(0)
        XCTAssertEqual(try withTimeout(5) { try middle.get() }, false)
        XCTAssertEqual(log, ["middle false"])
        // Two releases (this one, then first's) serve exactly first and last.
        try lock.release()
        _ = try withTimeout(5) { try joinAll([first, last], raiseError: true) }
        XCTAssertEqual(log, ["middle false", "first", "last"])
        XCTAssertFalse(lock.isLocked)
    }

    func testATimeoutThatExpiresAfterTheLockWasGrantedDoesNotLoseTheLock() throws {
        let lock = Lock()
        try lock.acquire()
        let gate = Event()
        var acquired: Bool?
        var caught: (any Error)?
        // Ready greenlets queued ahead of w, so that the hub polls its
        // timers (w's deadline has passed) after w was granted the lock and
        // before w runs.
        // They start first, so that the 10 ms deadline runs from just
        // before this greenlet's usleep, however long 300 starts take.
        let fillers = (0..<300).map { _ in spawn { try gate.wait() } }
        let w = spawn {
            do {
                try withTimeout(0.01) {
                    acquired = try lock.acquire()
                    try Green.sleep(1)      // the expired timeout is thrown here
                }
            } catch {
                caught = error
            }
            if acquired == true { try lock.release() }
        }
        defer { cleanUp([w] + fillers) }
        try Green.sleep(0)
        try letDeadlinesPass()
        gate.set()
        try lock.release()
        _ = try withTimeout(5) { try joinAll([w] + fillers, raiseError: true) }
        XCTAssertEqual(acquired, true)
        XCTAssertTrue(caught is TimeoutError, "\(String(describing: caught))")
        XCTAssertFalse(lock.isLocked)
    }

    func testAWaiterWhoseTimeoutIsCancelledBeforeItRunsStillGetsALockReleasedMeanwhile() throws {
        // w's deadline fires (w is made ready to throw), then, before w
        // runs, the timeout is cancelled (withdrawing the expiry) and the
        // lock released (skipping w, which looked about to leave). w then
        // has nothing to throw; it must not go back to sleep on a free lock.
        let lock = Lock()
        try lock.acquire()
        let gate = Event()
        var timeout: Timeout?
        var acquired = false
        // The fillers start first, so that w's 10 ms run from just before
        // this greenlet's usleep, however long starting 300 greenlets takes.
        let fillers = (0..<300).map { _ in spawn { try gate.wait() } }
        let w = spawn {
            let t = Timeout(0.01)
            timeout = t
            t.start()
            defer { t.cancel() }
            try lock.acquire()
            acquired = true
            try lock.release()
        }
        defer {
            cleanUp([w] + fillers)
            timeout = nil
        }
        try Green.sleep(0)
        try letDeadlinesPass()
        gate.set()
        // This greenlet is queued behind the fillers; the hub polls its
        // timers before it runs again, and w's expired deadline makes w ready.
        try Green.sleep(0)
        XCTAssertFalse(w.isReady)
        timeout?.cancel()
        try lock.release()
        let finished = try w.join(timeout: 2)
        XCTAssertTrue(finished, "w went back to sleep while the lock was free")
        XCTAssertTrue(acquired)
        XCTAssertFalse(lock.isLocked)
        _ = try withTimeout(5) { try joinAll(fillers) }
    }

    // MARK: - Lock: kills

    func testALockWaiterKilledWhileWaitingDoesNotGetTheLockAndTheNextWaiterDoes() throws {
        let lock = Lock()
        try lock.acquire()
        var victimGot = false
        var survivorGot = false
        let victim = spawn { try lock.acquire(); victimGot = true }
        let survivor = spawn { try lock.acquire(); survivorGot = true; try lock.release() }
        defer { cleanUp([victim, survivor]) }
        try Green.sleep(0)
        _ = try withTimeout(5) { try victim.kill() }
        XCTAssertTrue(victim.error is GreenletExit)
        XCTAssertTrue(lock.isLocked)
        try lock.release()
        _ = try withTimeout(5) { try survivor.join() }
        XCTAssertTrue(survivor.isSuccessful)
        XCTAssertFalse(victimGot)
        XCTAssertTrue(survivorGot)
        XCTAssertFalse(lock.isLocked)
    }

    func testAReleaseRightAfterAKillPassesTheLockToTheNextWaiterNotTheKilledOne() throws {
        let lock = Lock()
        try lock.acquire()
        var victimGot = false
        var survivorGot = false
        let victim = spawn { try lock.acquire(); victimGot = true }
        let survivor = spawn { try lock.acquire(); survivorGot = true; try lock.release() }
        defer { cleanUp([victim, survivor]) }
        try Green.sleep(0)
        try victim.kill(block: false)   // ready to throw, still first in line
        try lock.release()
        _ = try withTimeout(5) { try joinAll([victim, survivor]) }
        XCTAssertTrue(victim.error is GreenletExit)
        XCTAssertTrue(survivor.isSuccessful)
        XCTAssertFalse(victimGot)
        XCTAssertTrue(survivorGot)
        XCTAssertFalse(lock.isLocked)
    }

    func testAReleaseWhenTheOnlyWaiterWasKilledBeforeItRanUnlocksTheLock() throws {
        let lock = Lock()
        try lock.acquire()
        let victim = spawn { try lock.acquire() }
        defer { cleanUp([victim]) }
        try Green.sleep(0)
        try victim.kill(block: false)
        try lock.release()
        XCTAssertFalse(lock.isLocked)
        _ = try withTimeout(5) { try victim.join() }
        XCTAssertFalse(lock.isLocked)
    }

    func testAKillThatArrivesAfterTheLockWasGrantedDoesNotLoseTheLock() throws {
        let lock = Lock()
        try lock.acquire()
        var acquired: Bool?
        var thrownAfter: (any Error)?
        var heldWhenThrown = false
        let w = spawn {
            acquired = try lock.acquire()
            do {
                try Green.sleep(0)
            } catch {
                thrownAfter = error
                heldWhenThrown = lock.isLocked
                try lock.release()
                throw error
            }
        }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        try lock.release()          // granted to w, which has not run yet
        try w.kill(block: false)    // arrives after the grant
        XCTAssertTrue(lock.isLocked)
        _ = try withTimeout(5) { try w.join() }
        XCTAssertEqual(acquired, true)
        XCTAssertTrue(thrownAfter is GreenletExit, "\(String(describing: thrownAfter))")
        XCTAssertTrue(heldWhenThrown)
        XCTAssertTrue(w.error is GreenletExit)
        XCTAssertFalse(lock.isLocked)
    }

    // MARK: - Lock: deadlock report

    func testAcquiringALockNobodyCanReleaseThrowsWouldBlockForeverNamingTheHolder() throws {
        let lock = Lock()
        let gate = Event()
        let holder = spawn(name: "holder") {
            try lock.acquire()
            try gate.wait()
            try lock.release()
        }
        defer { cleanUp([holder]) }
        try Green.sleep(0)
        XCTAssertThrowsError(try lock.acquire()) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, let parked) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "Lock.acquire")
            XCTAssertEqual(parked, ["holder in Event.wait"])
        }
        gate.set()
        _ = try withTimeout(5) { try holder.join() }
        XCTAssertTrue(holder.isSuccessful)
        // The reported waiter left the list: the release unlocked the lock.
        XCTAssertFalse(lock.isLocked)
    }

    func testAcquiringALockTwiceFromOneGreenletIsADeadlock() throws {
        let lock = Lock()
        try lock.acquire()
        XCTAssertThrowsError(try lock.acquire()) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, let parked) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "Lock.acquire")
            XCTAssertEqual(parked, [])
        }
        XCTAssertTrue(lock.isLocked)
        try lock.release()
        XCTAssertFalse(lock.isLocked)
    }

    // MARK: - RLock basics

    func testRLockIsReentrant() throws {
        let lock = RLock()
        XCTAssertTrue(try lock.acquire())
        XCTAssertTrue(try lock.acquire())
        XCTAssertTrue(lock.tryAcquire())
        XCTAssertTrue(lock.isOwnedByCaller)
        try lock.release()
        try lock.release()
        XCTAssertTrue(lock.isLocked)
        XCTAssertTrue(lock.isOwnedByCaller)
        try lock.release()
        XCTAssertFalse(lock.isLocked)
        XCTAssertFalse(lock.isOwnedByCaller)
    }

    func testRLockStaysHeldUntilTheLastReleaseOfItsOwner() throws {
        let lock = RLock()
        try lock.acquire()
        try lock.acquire()
        var got = false
        let w = spawn { try lock.acquire(); got = true; try lock.release() }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        try lock.release()
        try Green.sleep(0)
        XCTAssertFalse(got, "the lock passed on while its owner still held it once")
        XCTAssertTrue(lock.isOwnedByCaller)
        try lock.release()
        _ = try withTimeout(5) { try w.join() }
        XCTAssertTrue(got)
        XCTAssertFalse(lock.isLocked)
    }

    func testRLockReleaseByANonOwnerThrowsNotOwner() throws {
        let lock = RLock()
        let gate = Event()
        let holder = spawn(name: "rlock-holder") {
            try lock.acquire()
            try gate.wait()
            try lock.release()
        }
        defer { cleanUp([holder]) }
        try Green.sleep(0)
        XCTAssertFalse(lock.isOwnedByCaller)
        XCTAssertThrowsError(try lock.release()) {
            XCTAssertEqual($0 as? SyncError, .notOwner(lock: "RLock", owner: "rlock-holder", caller: "main"))
        }
        XCTAssertTrue(lock.isLocked)
        gate.set()
        _ = try withTimeout(5) { try holder.join() }
        XCTAssertTrue(holder.isSuccessful)
        XCTAssertFalse(lock.isLocked)
    }

    func testRLockReleaseWhenUnlockedThrowsNotLocked() throws {
        let lock = RLock()
        XCTAssertThrowsError(try lock.release()) {
            XCTAssertEqual($0 as? SyncError, .notLocked("RLock"))
        }
    }

    func testRLockTryAcquireFailsForOtherGreenletsWhileHeld() throws {
        let lock = RLock()
        try lock.acquire()
        let other = spawn { () -> Bool in lock.tryAcquire() }
        defer { cleanUp([other]) }
        XCTAssertEqual(try withTimeout(5) { try other.get() }, false)
        try lock.release()
        XCTAssertFalse(lock.isLocked)
    }

    func testRLockWithLockNestsAndReleasesEveryLevel() throws {
        let lock = RLock()
        try lock.withLock {
            try lock.withLock {
                XCTAssertTrue(lock.isOwnedByCaller)
            }
            XCTAssertTrue(lock.isOwnedByCaller)
        }
        XCTAssertFalse(lock.isLocked)
        XCTAssertThrowsError(try lock.withLock { () throws -> Void in throw TestError("x") })
        XCTAssertFalse(lock.isLocked)
    }

    // MARK: - RLock: FIFO, timeouts, kills

    func testRLockWaitersGetTheLockInTheOrderTheyStartedWaiting() throws {
        let lock = RLock()
        try lock.acquire()
        var order: [Int] = []
        let gs = (0..<5).map { i in
            spawn {
                try lock.acquire()
                XCTAssertTrue(lock.isOwnedByCaller)
                order.append(i)
                try Green.sleep(0)
                try lock.release()
            }
        }
        defer { cleanUp(gs) }
        try Green.sleep(0)
        try lock.release()
        _ = try withTimeout(5) { try joinAll(gs, raiseError: true) }
        XCTAssertEqual(order, [0, 1, 2, 3, 4])
        XCTAssertFalse(lock.isLocked)
    }

    func testAnRLockWaiterThatTimesOutLeavesTheWaitList() throws {
        let lock = RLock()
        try lock.acquire()
        var log: [String] = []
        let first = spawn { try lock.acquire(); log.append("first"); try lock.release() }
        let middle = spawn { () throws -> Bool in
            let got = try lock.acquire(timeout: 0.01)
            log.append("middle \(got)")
            return got
        }
        let last = spawn { try lock.acquire(); log.append("last"); try lock.release() }
        defer { cleanUp([first, middle, last]) }
        try Green.sleep(0)
        XCTAssertEqual(try withTimeout(5) { try middle.get() }, false)
        try lock.release()
        _ = try withTimeout(5) { try joinAll([first, last], raiseError: true) }
        XCTAssertEqual(log, ["middle false", "first", "last"])
        XCTAssertFalse(lock.isLocked)
    }

    func testAnRLockWaiterKilledWhileWaitingDoesNotGetTheLockAndTheNextWaiterDoes() throws {
        let lock = RLock()
        try lock.acquire()
        var survivorGot = false
        let victim = spawn { try lock.acquire() }
        let survivor = spawn { try lock.acquire(); survivorGot = true; try lock.release() }
        defer { cleanUp([victim, survivor]) }
        try Green.sleep(0)
        try victim.kill(block: false)
        try lock.release()
        _ = try withTimeout(5) { try joinAll([victim, survivor]) }
        XCTAssertTrue(victim.error is GreenletExit)
        XCTAssertTrue(survivor.isSuccessful)
        XCTAssertTrue(survivorGot)
        XCTAssertFalse(lock.isLocked)
    }

    func testAKillThatArrivesAfterTheRLockWasGrantedDoesNotLoseTheLock() throws {
        let lock = RLock()
        try lock.acquire()
        var acquired: Bool?
        var ownedWhenThrown = false
        var thrownAfter: (any Error)?
        let w = spawn {
            acquired = try lock.acquire()
            do {
                try Green.sleep(0)
            } catch {
                thrownAfter = error
                ownedWhenThrown = lock.isOwnedByCaller
                try lock.release()
                throw error
            }
        }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        try lock.release()          // w owns it now, not having run
        try w.kill(block: false)
        XCTAssertTrue(lock.isLocked)
        XCTAssertFalse(lock.isOwnedByCaller)
        _ = try withTimeout(5) { try w.join() }
        XCTAssertEqual(acquired, true)
        XCTAssertTrue(thrownAfter is GreenletExit, "\(String(describing: thrownAfter))")
        XCTAssertTrue(ownedWhenThrown)
        XCTAssertFalse(lock.isLocked)
    }
}

/// Kills whatever is still running of `greenlets` and waits for them
/// (bounded), so that a failing test does not leave greenlets behind.
