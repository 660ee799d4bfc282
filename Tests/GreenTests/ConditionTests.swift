import Green
import XCTest
import GreenTestSupport

/// `Condition`: `wait` releases the lock and takes it back before it
/// returns or throws; `notify`/`notifyAll` wake waiters in FIFO order.
final class ConditionTests: VirtualTimeTestCase {
    // MARK: - The lock around wait

    func testWaitReleasesTheLockWhileWaitingAndRetakesItBeforeReturning() throws {
        let cond = Condition()
        let notified = try checkAWaitThatEndsWhileTheLockIsTakenReturnsWithTheLock(cond, wait: { try cond.wait() }) { _ in
            try cond.notify()
            try Green.sleep(0)
        }
        XCTAssertEqual(notified, true)
    }

    func testWaitRetakesTheLockAtTheSameReentranceDepth() throws {
        let cond = Condition()
        var depthOK = false
        let w = spawn {
            try cond.lock.acquire()
            try cond.lock.acquire()
            try cond.wait()
            try cond.lock.release()
            depthOK = cond.lock.isOwnedByCaller
            try cond.lock.release()
        }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        XCTAssertFalse(cond.lock.isLocked, "wait released only one level of a lock held twice")
        try cond.withLock { try cond.notify() }
        _ = try withTimeout(5) { try w.join() }
        XCTAssertTrue(w.isSuccessful)
        XCTAssertTrue(depthOK)
        XCTAssertFalse(cond.lock.isLocked)
    }

    func testAConditionCanShareAnRLockWithOtherCode() throws {
        let lock = RLock()
        let cond = Condition(lock: lock)
        XCTAssertTrue(cond.lock === lock)
        var seen = false
        let w = spawn { try lock.withLock { try cond.wait(); seen = true } }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        try lock.withLock { try cond.notify() }
        _ = try withTimeout(5) { try w.join() }
        XCTAssertTrue(seen)
    }

    // MARK: - Timeouts

    func testWaitWithTimeoutReturnsFalseAndHoldsTheLockAgain() throws {
        let cond = Condition()
        try cond.withLock {
            XCTAssertFalse(try cond.wait(timeout: 0.01))
            XCTAssertTrue(cond.lock.isOwnedByCaller)
        }
        XCTAssertFalse(cond.lock.isLocked)
    }

    func testAWaiterThatTimesOutWaitsForTheLockBeforeReturning() throws {
        let cond = Condition()
        let result = try checkAWaitThatEndsWhileTheLockIsTakenReturnsWithTheLock(
            cond, wait: { try cond.wait(timeout: 0.01) }
        ) { w in
            // Well past w's deadline: w timed out but waits for the lock.
            XCTAssertFalse(try w.join(timeout: 0.05))
        }
        XCTAssertEqual(result, false)
    }

    func testAnEnclosingTimeoutThrowsFromWaitWithTheLockHeldAgain() throws {
        let cond = Condition()
        var heldInCatch = false
        try cond.withLock {
            do {
                _ = try withTimeout(0.01) { try cond.wait() }
                XCTFail("wait returned")
            } catch is TimeoutError {
                heldInCatch = cond.lock.isOwnedByCaller
            }
        }
        XCTAssertTrue(heldInCatch)
        XCTAssertFalse(cond.lock.isLocked)
    }

    func testAWaiterThatTimesOutLeavesTheWaitListSoNotifyWakesTheOthersInOrder() throws {
        let cond = Condition()
        try checkATimedOutWaiterLeavesTheLine(
            first: { log in try cond.withLock { try cond.wait(); log("first") } },
            middle: { log in
                try cond.withLock {
                    let notified = try cond.wait(timeout: 0.01)
                    log("middle \(notified)")
                }
            },
            last: { log in try cond.withLock { try cond.wait(); log("last") } },
            timedOut: "middle false",
            serve: { _ in try cond.withLock { try cond.notify(2) } },
            served: ["first", "last"])
        XCTAssertFalse(cond.lock.isLocked)
    }

    // MARK: - Kills

    func testAKilledWaiterHoldsTheLockWhenItsCatchRunsAndWithLockReleasesIt() throws {
        let cond = Condition()
        var heldInCatch = false
        var heldInDefer = false
        let w = spawn {
            try cond.withLock {
                defer { heldInDefer = cond.lock.isOwnedByCaller }
                do {
                    try cond.wait()
                } catch {
                    heldInCatch = cond.lock.isOwnedByCaller
                    throw error
                }
            }
        }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        _ = try withTimeout(5) { try w.kill() }
        XCTAssertTrue(w.error is GreenletExit)
        XCTAssertTrue(heldInCatch)
        XCTAssertTrue(heldInDefer)
        XCTAssertFalse(cond.lock.isLocked)
    }

    func testAKilledWaiterWaitsForTheLockHeldByAnotherGreenletBeforeItsCatchRuns() throws {
        let cond = Condition()
        var log: [String] = []
        let w = spawn {
            try cond.withLock {
                do {
                    try cond.wait()
                } catch {
                    log.append("catch, holding: \(cond.lock.isOwnedByCaller)")
                    throw error
                }
            }
        }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        try cond.lock.acquire()
        try w.kill(block: false)
        XCTAssertFalse(try w.join(timeout: 0.02))
        XCTAssertEqual(log, [], "the killed waiter's catch ran without the lock")
        log.append("main releases")
        try cond.lock.release()
        _ = try withTimeout(5) { try w.join() }
        XCTAssertEqual(log, ["main releases", "catch, holding: true"])
        XCTAssertTrue(w.error is GreenletExit)
        XCTAssertFalse(cond.lock.isLocked)
    }

    func testAKilledWaiterLeavesTheWaitListSoNotifyWakesTheNextOne() throws {
        let cond = Condition()
        try checkAKilledWaiterGetsNothing(killBlocking: true, wait: { _ in try cond.withLock { try cond.wait() } }) {
            try cond.withLock { try cond.notify() }
        }
        XCTAssertFalse(cond.lock.isLocked)
    }

    func testANotifyRightAfterAKillSkipsTheKilledWaiter() throws {
        let cond = Condition()
        // The victim is ready to throw, still first in line, when the notify comes.
        try checkAKilledWaiterGetsNothing(killBlocking: false, wait: { _ in try cond.withLock { try cond.wait() } }) {
            try cond.withLock { try cond.notify() }
        }
    }

    func testAKillAfterTheNotifyLetsWaitReturnTrueAndThrowsAtTheNextBlockingPoint() throws {
        let cond = Condition()
        var notified: Bool?
        var heldWhenThrown = false
        var thrownAfter: (any Error)?
        let w = spawn {
            try cond.withLock {
                notified = try cond.wait()
                do {
                    try Green.sleep(0)
                } catch {
                    thrownAfter = error
                    heldWhenThrown = cond.lock.isOwnedByCaller
                    throw error
                }
            }
        }
        defer { cleanUp([w]) }
        try Green.sleep(0)
        try cond.withLock {
            try cond.notify()
            try w.kill(block: false)    // after the notification
        }
        _ = try withTimeout(5) { try w.join() }
        XCTAssertEqual(notified, true)
        XCTAssertTrue(thrownAfter is GreenletExit, "\(String(describing: thrownAfter))")
        XCTAssertTrue(heldWhenThrown)
        XCTAssertFalse(cond.lock.isLocked)
    }

    // MARK: - notify / notifyAll

    func testNotifyWakesWaitersInTheOrderTheyStartedWaiting() throws {
        let cond = Condition()
        try withWaiters(on: cond, count: 4) { gs, order in
            for n in 1...4 {
                try cond.withLock { try cond.notify() }
                try Green.sleep(0)
                XCTAssertEqual(order(), Array(0..<n), "after \(n) notify")
            }
            _ = try withTimeout(5) { try joinAll(gs, raiseError: true) }
        }
    }

    func testNotifyNWakesExactlyNWaitersOldestFirst() throws {
        let cond = Condition()
        try withWaiters(on: cond, count: 5) { gs, order in
            try cond.withLock { try cond.notify(3) }
            try Green.sleep(0)
            try Green.sleep(0)
            XCTAssertEqual(order(), [0, 1, 2])
            XCTAssertFalse(gs[3].isReady)
            XCTAssertFalse(gs[4].isReady)
            try cond.withLock { try cond.notify(2) }
            _ = try withTimeout(5) { try joinAll(gs, raiseError: true) }
            XCTAssertEqual(order(), [0, 1, 2, 3, 4])
        }
    }

    func testNotifyAllWakesEveryWaiterInOrder() throws {
        let cond = Condition()
        try withWaiters(on: cond, count: 6) { gs, order in
            try cond.withLock { try cond.notifyAll() }
            _ = try withTimeout(5) { try joinAll(gs, raiseError: true) }
            XCTAssertEqual(order(), [0, 1, 2, 3, 4, 5])
        }
        XCTAssertFalse(cond.lock.isLocked)
    }

    func testANotifyWithNoWaiterIsNotKeptForALaterWaiter() throws {
        let cond = Condition()
        try cond.withLock { try cond.notify() }
        try cond.withLock { try cond.notifyAll() }
        try cond.withLock {
            XCTAssertFalse(try cond.wait(timeout: 0.01))
        }
    }

    func testAProducerAndConsumerHandOverEveryItemThroughACondition() throws {
        let cond = Condition()
        var items: [Int] = []
        var consumed: [Int] = []
        var finished = false
        let consumer = spawn {
            while true {
                let item: Int? = try cond.withLock {
                    while items.isEmpty && !finished { try cond.wait() }
                    return items.isEmpty ? nil : items.removeFirst()
                }
                guard let item else { return }
                consumed.append(item)
            }
        }
        let producer = spawn {
            for i in 0..<50 {
                try cond.withLock {
                    items.append(i)
                    try cond.notify()
                }
                if i % 7 == 0 { try Green.sleep(0) }
            }
            try cond.withLock {
                finished = true
                try cond.notifyAll()
            }
        }
        defer { cleanUp([consumer, producer]) }
        _ = try withTimeout(5) { try joinAll([consumer, producer], raiseError: true) }
        XCTAssertEqual(consumed, Array(0..<50))
    }

    // MARK: - Misuse

    func testWaitWithoutHoldingTheLockThrowsNotOwner() throws {
        let cond = Condition()
        XCTAssertThrowsError(try cond.wait()) { error in
            guard case SyncError.notOwner = error else {
                return XCTFail("Condition.wait without the lock: expected SyncError.notOwner, got \(error)")
            }
        }
        XCTAssertThrowsError(try cond.wait(timeout: 0.01)) { error in
            guard case SyncError.notOwner = error else {
                return XCTFail("Condition.wait(timeout:) without the lock: expected SyncError.notOwner, got \(error)")
            }
        }
        XCTAssertFalse(cond.lock.isLocked)
    }

    func testNotifyWithoutHoldingTheLockThrowsNotOwner() throws {
        let cond = Condition()
        XCTAssertThrowsError(try cond.notify()) { error in
            guard case SyncError.notOwner = error else {
                return XCTFail("Condition.notify without the lock: expected SyncError.notOwner, got \(error)")
            }
        }
        XCTAssertThrowsError(try cond.notifyAll()) { error in
            guard case SyncError.notOwner = error else {
                return XCTFail("Condition.notifyAll without the lock: expected SyncError.notOwner, got \(error)")
            }
        }
    }

    func testWaitAndNotifyWhileAnotherGreenletHoldsTheLockThrowNotOwner() throws {
        let cond = Condition()
        let gate = Event()
        let holder = spawn(name: "cond-holder") { try cond.withLock { try gate.wait() } }
        defer { cleanUp([holder]) }
        try Green.sleep(0)
        let expected = SyncError.notOwner(lock: "RLock", owner: "cond-holder", caller: "main")
        XCTAssertThrowsError(try cond.wait()) { XCTAssertEqual($0 as? SyncError, expected) }
        XCTAssertThrowsError(try cond.notify()) { XCTAssertEqual($0 as? SyncError, expected) }
        XCTAssertThrowsError(try cond.notifyAll()) { XCTAssertEqual($0 as? SyncError, expected) }
        // The holder's hold is untouched.
        XCTAssertTrue(cond.lock.isLocked)
        gate.set()
        _ = try withTimeout(5) { try holder.join() }
        XCTAssertTrue(holder.isSuccessful)
        XCTAssertFalse(cond.lock.isLocked)
    }
}

/// w waits on `cond` with its lock (through `wait`), then this greenlet
/// takes the lock and, holding it, ends w's wait (`endTheWait`: a notify,
/// or w's deadline passing). w must not return before it has the lock
/// back. Returns what `wait` returned.
private func checkAWaitThatEndsWhileTheLockIsTakenReturnsWithTheLock(
    _ cond: Condition, wait: @escaping () throws -> Bool, endTheWait: (Greenlet<Void>) throws -> Void,
    file: StaticString = #filePath, line: UInt = #line
) throws -> Bool? {
    var result: Bool?
    var heldAfter = false
    let w = spawn {
        try cond.withLock {
            result = try wait()
            heldAfter = cond.lock.isOwnedByCaller
        }
    }
    defer { cleanUp([w]) }
    try Green.sleep(0)
    // w waits: the lock is free for others.
    XCTAssertFalse(cond.lock.isLocked, file: file, line: line)
    XCTAssertTrue(cond.lock.tryAcquire(), file: file, line: line)
    try endTheWait(w)
    // w's wait ended, but it cannot return before it has the lock back.
    XCTAssertNil(result, file: file, line: line)
    XCTAssertFalse(w.isReady, file: file, line: line)
    try cond.lock.release()
    _ = try withTimeout(5) { try w.join() }
    XCTAssertTrue(heldAfter, file: file, line: line)
    XCTAssertFalse(cond.lock.isLocked, file: file, line: line)
    return result
}

/// `count` greenlets wait on `cond`, in that order, each appending its
/// index to the order they were woken in; `body` runs once they all
/// wait, given them and that order.
private func withWaiters(on cond: Condition, count: Int,
                         _ body: (_ waiters: [Greenlet<Void>], _ order: () -> [Int]) throws -> Void) throws {
    var order: [Int] = []
    let gs = (0..<count).map { i in spawn { try cond.withLock { try cond.wait(); order.append(i) } } }
    defer { cleanUp(gs) }
    try Green.sleep(0)
    try body(gs) { order }
}
