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
        try checkWaitersGetTheLockInTheOrderTheyStartedWaiting(Lock()) { _ in }
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
        try checkATimedOutLockWaiterLeavesTheLine(Lock())
    }

    func testATimeoutThatExpiresAfterTheLockWasGrantedDoesNotLoseTheLock() throws {
        let lock = Lock()
        try lock.acquire()
        let acquired = try checkATimeoutAfterTheGrantTakesNothingBack(
            wait: { try lock.acquire() },
            afterwards: { acquired in if acquired == true { try lock.release() } },
            grant: { try lock.release() })
        XCTAssertEqual(acquired, true)
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
        try checkAKilledWaiterGetsNothing(of: lock, killBlocking: true, giveBack: true) {
            XCTAssertTrue(lock.isLocked)
        }
        XCTAssertFalse(lock.isLocked)
    }

    func testAReleaseRightAfterAKillPassesTheLockToTheNextWaiterNotTheKilledOne() throws {
        try checkAReleaseRightAfterAKillSkipsTheKilledWaiter(Lock())
    }

    func testAReleaseWhenTheOnlyWaiterWasKilledBeforeItRanUnlocksTheLock() throws {
        let lock = Lock()
        try lock.acquire()
        try checkAReleaseSkipsAKilledOnlyWaiter(of: lock) { XCTAssertFalse(lock.isLocked) }
    }

    func testAKillThatArrivesAfterTheLockWasGrantedDoesNotLoseTheLock() throws {
        try checkAKillAfterTheLockWasGrantedDoesNotLoseIt(Lock(), heldByTheWaiter: { $0.isLocked })
    }

    // MARK: - Lock: deadlock report

    func testAcquiringALockNobodyCanReleaseThrowsWouldBlockForeverNamingTheHolder() throws {
        let lock = Lock()
        try whileAnotherGreenletHolds(lock, named: "holder") {
            XCTAssertThrowsError(try lock.acquire()) { error in
                guard case GreenError.wouldBlockForever(let waitingOn, let parked) = error else {
                    return XCTFail("expected wouldBlockForever, got \(error)")
                }
                XCTAssertEqual(waitingOn, "Lock.acquire")
                XCTAssertEqual(parked, ["holder in Event.wait"])
            }
        }
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
        try whileAnotherGreenletHolds(lock, named: "rlock-holder") {
            XCTAssertFalse(lock.isOwnedByCaller)
            XCTAssertThrowsError(try lock.release()) {
                XCTAssertEqual($0 as? SyncError, .notOwner(lock: "RLock", owner: "rlock-holder", caller: "main"))
            }
            XCTAssertTrue(lock.isLocked)
        }
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
        try checkWaitersGetTheLockInTheOrderTheyStartedWaiting(RLock()) { lock in
            XCTAssertTrue(lock.isOwnedByCaller)
        }
    }

    func testAnRLockWaiterThatTimesOutLeavesTheWaitList() throws {
        try checkATimedOutLockWaiterLeavesTheLine(RLock())
    }

    func testAnRLockWaiterKilledWhileWaitingDoesNotGetTheLockAndTheNextWaiterDoes() throws {
        try checkAReleaseRightAfterAKillSkipsTheKilledWaiter(RLock())
    }

    func testAKillThatArrivesAfterTheRLockWasGrantedDoesNotLoseTheLock() throws {
        // Owned by the waiter, not by this greenlet, between the grant and the waiter's run.
        try checkAKillAfterTheLockWasGrantedDoesNotLoseIt(RLock(), heldByTheWaiter: { $0.isOwnedByCaller },
                                                          beforeItRuns: { XCTAssertFalse($0.isOwnedByCaller) })
    }
}

// MARK: - Scenarios run on both kinds of lock

/// Five greenlets wait for `lock`, held here, and get it in the order
/// they started waiting, each holding it across a blocking point;
/// `whileHeld` runs in each while it holds the lock.
private func checkWaitersGetTheLockInTheOrderTheyStartedWaiting<L: Acquirable>(
    _ lock: L, whileHeld: @escaping (L) -> Void
) throws {
    try lock.acquire(timeout: nil)
    var order: [Int] = []
    let gs = (0..<5).map { i in
        spawn {
            try lock.acquire(timeout: nil)
            whileHeld(lock)
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

/// `checkATimedOutWaiterLeavesTheLine` on `lock`, held here: two releases
/// (this one, then first's) serve exactly first and last.
private func checkATimedOutLockWaiterLeavesTheLine(
    _ lock: some Acquirable, file: StaticString = #filePath, line: UInt = #line
) throws {
    try lock.acquire(timeout: nil)
    try checkATimedOutWaiterLeavesTheLine(of: lock, giveBack: true, serve: { _ in try lock.release() },
                                          file: file, line: line)
    XCTAssertFalse(lock.isLocked, file: file, line: line)
}

/// `checkAKilledWaiterGetsNothing` on `lock`, held here, killing the
/// victim without blocking: it is ready to throw, still first in line,
/// when the release comes.
private func checkAReleaseRightAfterAKillSkipsTheKilledWaiter(
    _ lock: some Acquirable, file: StaticString = #filePath, line: UInt = #line
) throws {
    try lock.acquire(timeout: nil)
    try checkAKilledWaiterGetsNothing(of: lock, killBlocking: false, giveBack: true, file: file, line: line)
    XCTAssertFalse(lock.isLocked, file: file, line: line)
}

/// `checkAKillAfterTheGrantTakesNothingBack` on `lock`, held here and
/// granted by its release: the waiter holds it (`heldByTheWaiter`, asked
/// in the waiter) when the kill is thrown, and releases it then.
/// `beforeItRuns` runs between the grant and the waiter's run.
private func checkAKillAfterTheLockWasGrantedDoesNotLoseIt<L: Acquirable>(
    _ lock: L, heldByTheWaiter: @escaping (L) -> Bool, beforeItRuns: (L) -> Void = { _ in },
    file: StaticString = #filePath, line: UInt = #line
) throws {
    try lock.acquire(timeout: nil)
    var heldWhenThrown = false
    let acquired = try checkAKillAfterTheGrantTakesNothingBack(
        wait: { try lock.acquire(timeout: nil) },
        grant: { try lock.release() },
        beforeItRuns: {
            XCTAssertTrue(lock.isLocked, file: file, line: line)
            beforeItRuns(lock)
        },
        onKill: {
            heldWhenThrown = heldByTheWaiter(lock)
            try lock.release()
        },
        file: file, line: line)
    XCTAssertEqual(acquired, true, file: file, line: line)
    XCTAssertTrue(heldWhenThrown, file: file, line: line)
    XCTAssertFalse(lock.isLocked, file: file, line: line)
}

/// Runs `body` while a greenlet named `name` holds `lock` (parked in
/// `Event.wait`), then lets that greenlet release it and end.
private func whileAnotherGreenletHolds(_ lock: some Acquirable, named name: String,
                                       _ body: () throws -> Void) throws {
    let gate = Event()
    let holder = spawn(name: name) {
        try lock.acquire(timeout: nil)
        try gate.wait()
        try lock.release()
    }
    defer { cleanUp([holder]) }
    try Green.sleep(0)
    try body()
    gate.set()
    _ = try withTimeout(5) { try holder.join() }
    XCTAssertTrue(holder.isSuccessful, "\(String(describing: holder.error))")
}
