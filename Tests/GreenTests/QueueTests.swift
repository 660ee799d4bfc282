import Glibc
import Green
import XCTest
import GreenTestSupport

/// `Queue`, `LifoQueue` and `PriorityQueue`: order, bounds, waiting with
/// timeouts and kills, `close()`, iteration and the deadlock report.
final class QueueTests: VirtualTimeTestCase {
    // MARK: - Order and the non-waiting calls

    func testItemsComeOutInTheOrderTheyWentIn() throws {
        let q = Queue<Int>()
        for i in 1...5 { try q.put(i) }
        XCTAssertEqual(q.count, 5)
        XCTAssertEqual(try (0..<5).map { _ in try q.get() }, [1, 2, 3, 4, 5])
        XCTAssertTrue(q.isEmpty)
    }

    func testPeekShowsTheNextItemWithoutRemovingIt() throws {
        let q = Queue<String>()
        XCTAssertNil(q.peek())
        try q.put("a")
        try q.put("b")
        XCTAssertEqual(q.peek(), "a")
        XCTAssertEqual(q.peek(), "a")
        XCTAssertEqual(q.count, 2)
        XCTAssertEqual(try q.get(), "a")
        XCTAssertEqual(q.peek(), "b")
    }

    func testGetNowaitOnAnEmptyQueueThrowsQueueEmpty() throws {
        let q = Queue<Int>()
        XCTAssertThrowsError(try q.getNowait()) { XCTAssertTrue($0 is QueueEmpty, "\($0)") }
        try q.put(1)
        XCTAssertEqual(try q.getNowait(), 1)
        XCTAssertThrowsError(try q.getNowait()) { XCTAssertTrue($0 is QueueEmpty, "\($0)") }
    }

    func testPutNowaitOnAFullQueueThrowsQueueFullAndDoesNotAddTheItem() throws {
        let q = Queue<Int>(maxSize: 2)
        try q.putNowait(1)
        try q.putNowait(2)
        XCTAssertTrue(q.isFull)
        XCTAssertThrowsError(try q.putNowait(3)) { error in
            guard let e = error as? QueueFull else { return XCTFail("\(error)") }
            XCTAssertEqual(e.maxSize, 2)
        }
        XCTAssertEqual(q.count, 2)
        XCTAssertEqual(try q.get(), 1)
        XCTAssertFalse(q.isFull)
        XCTAssertEqual(try q.get(), 2)
    }

    func testAnUnboundedQueueIsNeverFull() throws {
        let q = Queue<Int>()
        XCTAssertNil(q.maxSize)
        for i in 0..<10_000 { try q.putNowait(i) }
        XCTAssertFalse(q.isFull)
        XCTAssertEqual(q.count, 10_000)
        var expected = 0
        while let item = try? q.getNowait() {
            XCTAssertEqual(item, expected)
            expected += 1
        }
        XCTAssertEqual(expected, 10_000)
    }

    // MARK: - Waiting getters

    func testGetWaitsForAnItemAndAPutHandsItStraightToTheWaitingGetter() throws {
        let q = Queue<Int>()
        var got: Int?
        let getter = spawn { got = try q.get() }
        defer { cleanUp([getter]) }
        try Green.sleep(0)
        XCTAssertEqual(q.waitingGetters, 1)
        try q.put(42)
        // The item went to the getter, not into the queue.
        XCTAssertEqual(q.count, 0)
        XCTAssertThrowsError(try q.getNowait())
        _ = try withTimeout(5) { try getter.join() }
        XCTAssertEqual(got, 42)
        XCTAssertEqual(q.waitingGetters, 0)
    }

    func testWaitingGettersAreServedInTheOrderTheyStartedWaiting() throws {
        let q = Queue<Int>()
        var got: [String] = []
        let getters = (0..<4).map { i in spawn { got.append("g\(i)=\(try q.get())") } }
        defer { cleanUp(getters) }
        try Green.sleep(0)
        XCTAssertEqual(q.waitingGetters, 4)
        for item in [10, 11, 12, 13] { try q.put(item) }
        _ = try withTimeout(5) { try joinAll(getters, raiseError: true) }
        XCTAssertEqual(got, ["g0=10", "g1=11", "g2=12", "g3=13"])
    }

    func testGetWithTimeoutThrowsQueueEmptyWhenNothingArrives() throws {
        let q = Queue<Int>()
        XCTAssertThrowsError(try q.get(timeout: 0.01)) { XCTAssertTrue($0 is QueueEmpty, "\($0)") }
        XCTAssertEqual(q.waitingGetters, 0)
        // The next item is kept, not handed to the getter that left.
        try q.put(1)
        XCTAssertEqual(q.count, 1)
    }

    func testAGetterThatTimesOutLeavesTheWaitListSoTheNextItemsGoToTheOthersInOrder() throws {
        let q = Queue<Int>()
        var log: [String] = []
        let first = spawn { log.append("first \(try q.get())") }
        let middle = spawn {
            do {
                log.append("middle \(try q.get(timeout: 0.01))")
            } catch is QueueEmpty {
                log.append("middle timed out")
            }
        }
        let last = spawn { log.append("last \(try q.get())") }
        defer { cleanUp([first, middle, last]) }
        try Green.sleep(0)
        _ = try withTimeout(5) { try middle.join() }
        XCTAssertEqual(log, ["middle timed out"])
        XCTAssertEqual(q.waitingGetters, 2)
        try q.put(1)
        try q.put(2)
        _ = try withTimeout(5) { try joinAll([first, last], raiseError: true) }
        XCTAssertEqual(log, ["middle timed out", "first 1", "last 2"])
        XCTAssertEqual(q.count, 0)
        XCTAssertEqual(q.waitingGetters, 0)
    }

    func testAGetterKilledWhileWaitingTakesNoItem() throws {
        let q = Queue<Int>()
        var victimGot: Int?
        let victim = spawn { victimGot = try q.get() }
        let survivor = spawn { () throws -> Int in try q.get() }
        defer { cleanUp([victim, survivor]) }
        try Green.sleep(0)
        _ = try withTimeout(5) { try victim.kill() }
        XCTAssertTrue(victim.error is GreenletExit)
        XCTAssertEqual(q.waitingGetters, 1)
        try q.put(7)
        XCTAssertEqual(try withTimeout(5) { try survivor.get() }, 7)
        XCTAssertNil(victimGot)
        XCTAssertEqual(q.count, 0)
    }

    func testAPutRightAfterAGetterWasKilledGoesToTheNextGetter() throws {
        let q = Queue<Int>()
        let victim = spawn { () throws -> Int in try q.get() }
        let survivor = spawn { () throws -> Int in try q.get() }
        defer { cleanUp([victim, survivor]) }
        try Green.sleep(0)
        try victim.kill(block: false)   // ready to throw, still first in line
        try q.put(1)
        try q.put(2)
        _ = try withTimeout(5) { try joinAll([victim, survivor]) }
        XCTAssertTrue(victim.error is GreenletExit)
        XCTAssertEqual(try survivor.get(), 1)
        // The second item found no getter and was kept.
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(try q.get(), 2)
    }

    func testAKillThatArrivesAfterAGetterWasHandedAnItemDoesNotLoseTheItem() throws {
        let q = Queue<String>()
        var got: String?
        var thrownAfter: (any Error)?
        let getter = spawn {
            got = try q.get()
            do { try Green.sleep(0) } catch { thrownAfter = error; throw error }
        }
        defer { cleanUp([getter]) }
        try Green.sleep(0)
        try q.put("item")               // handed to the getter, which has not run
        try getter.kill(block: false)   // arrives after the hand-over
        _ = try withTimeout(5) { try getter.join() }
        XCTAssertEqual(got, "item")
        XCTAssertTrue(thrownAfter is GreenletExit, "\(String(describing: thrownAfter))")
        XCTAssertEqual(q.count, 0)
    }

    func testATimeoutThatExpiresAfterAGetterWasHandedAnItemDoesNotLoseTheItem() throws {
        let q = Queue<String>()
        let gate = Event()
        var got: String?
        var caught: (any Error)?
        // Ready greenlets queued ahead of the getter, so that the hub polls
        // its timers (the getter's deadline has passed) after the getter
        // was handed the item and before it runs.
        // They start first, so that the 10 ms deadline runs from just
        // before this greenlet's usleep, however long 300 starts take.
        let fillers = (0..<300).map { _ in spawn { try gate.wait() } }
        let getter = spawn {
            do {
                try withTimeout(0.01) {
                    got = try q.get()
                    try Green.sleep(1)    // the expired timeout is thrown here
                }
            } catch {
                caught = error
            }
        }
        defer { cleanUp([getter] + fillers) }
        try Green.sleep(0)
        try letDeadlinesPass()
        gate.set()
        try q.put("item")
        _ = try withTimeout(5) { try joinAll([getter] + fillers, raiseError: true) }
        XCTAssertEqual(got, "item")
        XCTAssertTrue(caught is TimeoutError, "\(String(describing: caught))")
        XCTAssertEqual(q.count, 0)
    }

    // MARK: - Waiting putters

    func testABoundedPutWaitsWhileFullAndResumesWhenAGetFreesRoom() throws {
        let q = Queue<Int>(maxSize: 2)
        try q.put(1)
        try q.put(2)
        var putterDone = false
        let putter = spawn { try q.put(3); putterDone = true }
        defer { cleanUp([putter]) }
        try Green.sleep(0)
        XCTAssertFalse(putterDone)
        XCTAssertEqual(q.waitingPutters, 1)
        XCTAssertEqual(q.count, 2)
        XCTAssertEqual(try q.get(), 1)
        // The waiting putter's item took the freed place at once.
        XCTAssertEqual(q.count, 2)
        XCTAssertEqual(q.waitingPutters, 0)
        _ = try withTimeout(5) { try putter.join() }
        XCTAssertTrue(putterDone)
        XCTAssertEqual(try q.get(), 2)
        XCTAssertEqual(try q.get(), 3)
        XCTAssertTrue(q.isEmpty)
    }

    func testWaitingPuttersAddTheirItemsInTheOrderTheyStartedWaiting() throws {
        let q = Queue<String>(maxSize: 1)
        try q.put("x")
        let putters = ["a", "b", "c"].map { item in spawn { try q.put(item) } }
        defer { cleanUp(putters) }
        try Green.sleep(0)
        XCTAssertEqual(q.waitingPutters, 3)
        var out: [String] = []
        for _ in 0..<4 { out.append(try q.get()) }
        XCTAssertEqual(out, ["x", "a", "b", "c"])
        _ = try withTimeout(5) { try joinAll(putters, raiseError: true) }
        XCTAssertTrue(q.isEmpty)
    }

    func testPutWithTimeoutThrowsQueueFullAndTheItemIsNotAdded() throws {
        let q = Queue<Int>(maxSize: 1)
        try q.put(1)
        XCTAssertThrowsError(try q.put(2, timeout: 0.01)) { error in
            guard let e = error as? QueueFull else { return XCTFail("\(error)") }
            XCTAssertEqual(e.maxSize, 1)
        }
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(q.waitingPutters, 0)
        XCTAssertEqual(try q.get(), 1)
        XCTAssertThrowsError(try q.getNowait())
    }

    func testAPutterThatTimesOutLeavesTheWaitListAndItsItemIsNeverAdded() throws {
        let q = Queue<String>(maxSize: 1)
        try q.put("x")
        var log: [String] = []
        let first = spawn { try q.put("a"); log.append("a put") }
        let middle = spawn {
            do {
                try q.put("b", timeout: 0.01)
                log.append("b put")
            } catch is QueueFull {
                log.append("b timed out")
            }
        }
        let last = spawn { try q.put("c"); log.append("c put") }
        defer { cleanUp([first, middle, last]) }
        try Green.sleep(0)
        _ = try withTimeout(5) { try middle.join() }
        XCTAssertEqual(log, ["b timed out"])
        XCTAssertEqual(q.waitingPutters, 2)
        var out: [String] = []
        for _ in 0..<3 { out.append(try q.get()) }
        XCTAssertEqual(out, ["x", "a", "c"])
        _ = try withTimeout(5) { try joinAll([first, last], raiseError: true) }
        XCTAssertEqual(log, ["b timed out", "a put", "c put"])
        XCTAssertTrue(q.isEmpty)
        XCTAssertEqual(q.waitingPutters, 0)
    }

    func testAPutterKilledWhileWaitingDoesNotAddItsItemAndReleasesIt() throws {
        let q = Queue<Tracked>(maxSize: 1)
        try q.put(Tracked(0))
        weak var victimItem: Tracked?
        let victim = spawn {
            let item = Tracked(1)
            victimItem = item
            try q.put(item)
        }
        let survivor = spawn { try q.put(Tracked(2)) }
        defer { cleanUp([victim, survivor]) }
        try Green.sleep(0)
        XCTAssertNotNil(victimItem)
        _ = try withTimeout(5) { try victim.kill() }
        XCTAssertTrue(victim.error is GreenletExit)
        XCTAssertNil(victimItem, "the killed putter's item is still referenced")
        XCTAssertEqual(q.waitingPutters, 1)
        XCTAssertEqual(try q.get().tag, 0)
        XCTAssertEqual(try q.get().tag, 2)
        _ = try withTimeout(5) { try survivor.join() }
        XCTAssertTrue(q.isEmpty)
    }

    func testAGetRightAfterAPutterWasKilledTakesTheNextPuttersItem() throws {
        let q = Queue<String>(maxSize: 1)
        try q.put("x")
        let victim = spawn { try q.put("victim") }
        let survivor = spawn { try q.put("survivor") }
        defer { cleanUp([victim, survivor]) }
        try Green.sleep(0)
        try victim.kill(block: false)
        XCTAssertEqual(try q.get(), "x")
        XCTAssertEqual(try q.get(), "survivor")
        _ = try withTimeout(5) { try joinAll([victim, survivor]) }
        XCTAssertTrue(victim.error is GreenletExit)
        XCTAssertTrue(survivor.isSuccessful)
        XCTAssertTrue(q.isEmpty)
    }

    func testAKillThatArrivesAfterAPuttersItemWasTakenInDoesNotLoseTheItem() throws {
        let q = Queue<String>(maxSize: 1)
        try q.put("x")
        var putReturned = false
        var thrownAfter: (any Error)?
        let putter = spawn {
            try q.put("p")
            putReturned = true
            do { try Green.sleep(0) } catch { thrownAfter = error; throw error }
        }
        defer { cleanUp([putter]) }
        try Green.sleep(0)
        XCTAssertEqual(try q.get(), "x")   // "p" moves in; the putter is granted
        try putter.kill(block: false)       // after the grant
        _ = try withTimeout(5) { try putter.join() }
        XCTAssertTrue(putReturned)
        XCTAssertTrue(thrownAfter is GreenletExit, "\(String(describing: thrownAfter))")
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(try q.get(), "p")
    }

    // MARK: - close()

    func testPutAfterCloseThrowsQueueClosed() throws {
        let q = Queue<Int>()
        XCTAssertFalse(q.isClosed)
        q.close()
        XCTAssertTrue(q.isClosed)
        XCTAssertThrowsError(try q.put(1)) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        XCTAssertThrowsError(try q.putNowait(1)) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        XCTAssertEqual(q.count, 0)
        q.close()   // twice does nothing
        XCTAssertTrue(q.isClosed)
    }

    func testGetAfterCloseDrainsTheRemainingItemsThenThrowsQueueClosed() throws {
        let q = Queue<Int>()
        for i in 1...3 { try q.put(i) }
        q.close()
        XCTAssertEqual(try q.get(), 1)
        XCTAssertEqual(try q.getNowait(), 2)
        XCTAssertEqual(try q.get(timeout: 1), 3)
        XCTAssertThrowsError(try q.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        XCTAssertThrowsError(try q.getNowait()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        XCTAssertThrowsError(try q.get(timeout: 1)) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
    }

    func testReceiveReturnsTheItemsThenNilOnceClosedAndDrained() throws {
        let q = Queue<Int>()
        try q.put(1)
        try q.put(2)
        q.close()
        XCTAssertEqual(try q.receive(), 1)
        XCTAssertEqual(try q.receive(), 2)
        XCTAssertNil(try q.receive())
        XCTAssertNil(try q.receive())
    }

    func testForInEndsAfterDrainingAClosedQueue() throws {
        let q = Queue<Int>()
        for i in 0..<5 { try q.put(i) }
        q.close()
        var seen: [Int] = []
        for item in q { seen.append(item) }
        XCTAssertEqual(seen, [0, 1, 2, 3, 4])
    }

    func testAConsumerLoopingWithForInEndsWhenTheProducerCloses() throws {
        let q = Queue<Int>(maxSize: 3)
        var seen: [Int] = []
        let consumer = spawn { for item in q { seen.append(item) } }
        let producer = spawn {
            for i in 0..<20 { try q.put(i) }
            q.close()
        }
        defer { cleanUp([consumer, producer]) }
        _ = try withTimeout(5) { try joinAll([consumer, producer], raiseError: true) }
        XCTAssertEqual(seen, Array(0..<20))
    }

    func testGettersWaitingAtCloseGetQueueClosed() throws {
        let q = Queue<Int>()
        let getters = (0..<3).map { _ in spawn { () throws -> Int in try q.get() } }
        defer { cleanUp(getters) }
        try Green.sleep(0)
        XCTAssertEqual(q.waitingGetters, 3)
        q.close()
        _ = try withTimeout(5) { try joinAll(getters) }
        for g in getters {
            XCTAssertThrowsError(try g.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        }
        XCTAssertEqual(q.waitingGetters, 0)
    }

    func testPuttersWaitingAtCloseGetQueueClosedAndTheirItemsAreNotAdded() throws {
        let q = Queue<String>(maxSize: 1)
        try q.put("x")
        let putters = ["a", "b"].map { item in spawn { try q.put(item) } }
        defer { cleanUp(putters) }
        try Green.sleep(0)
        XCTAssertEqual(q.waitingPutters, 2)
        q.close()
        _ = try withTimeout(5) { try joinAll(putters) }
        for p in putters {
            XCTAssertThrowsError(try p.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        }
        XCTAssertEqual(q.waitingPutters, 0)
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(try q.get(), "x")
        XCTAssertThrowsError(try q.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
    }

    func testAPutterWhoseItemWasTakenInBeforeCloseReturnsNormally() throws {
        let q = Queue<String>(maxSize: 1)
        try q.put("x")
        let putter = spawn { try q.put("p") }
        defer { cleanUp([putter]) }
        try Green.sleep(0)
        XCTAssertEqual(try q.get(), "x")   // "p" is in; the putter has not run yet
        q.close()
        _ = try withTimeout(5) { try putter.join() }
        XCTAssertTrue(putter.isSuccessful)
        XCTAssertEqual(try q.get(), "p")
        XCTAssertThrowsError(try q.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
    }

    // MARK: - Iteration interrupted

    func testAKillDuringForInEndsTheLoopAndIsThrownAtTheNextBlockingCall() throws {
        let q = Queue<Int>()
        var seen: [Int] = []
        var loopEnded = false
        var thrownAfter: (any Error)?
        var reachedEnd = false
        let consumer = spawn {
            for item in q { seen.append(item) }
            loopEnded = true
            do {
                try Green.sleep(0)
            } catch {
                thrownAfter = error
                throw error
            }
            reachedEnd = true
        }
        defer { cleanUp([consumer]) }
        try Green.sleep(0)
        try q.put(1)
        try Green.sleep(0)
        XCTAssertEqual(seen, [1])
        _ = try withTimeout(5) { try consumer.kill() }
        XCTAssertTrue(loopEnded)
        XCTAssertTrue(thrownAfter is GreenletExit, "\(String(describing: thrownAfter))")
        XCTAssertFalse(reachedEnd)
        XCTAssertTrue(consumer.error is GreenletExit)
        XCTAssertEqual(q.waitingGetters, 0)
        // The queue is still usable; nobody consumes any more.
        try q.put(2)
        XCTAssertEqual(q.count, 1)
    }

    func testATimeoutDuringForInEndsTheLoopAndIsThrownAtTheNextBlockingCall() throws {
        let q = Queue<Int>()
        try q.put(1)
        try q.put(2)
        var seen: [Int] = []
        var loopEnded = false
        let t = Timeout(0.02)
        t.start()
        defer { t.cancel() }
        XCTAssertThrowsError(try {
            for item in q { seen.append(item) }
            loopEnded = true
            try Green.sleep(0)
            XCTFail("the timeout was not thrown at the blocking call after the loop")
        }()) { error in
            XCTAssertTrue((error as? TimeoutError)?.isFrom(t) ?? false, "\(error)")
        }
        XCTAssertEqual(seen, [1, 2])
        XCTAssertTrue(loopEnded)
        XCTAssertEqual(q.waitingGetters, 0)
        // Thrown once, not again.
        try Green.sleep(0)
    }

    func testATimeoutDuringForInInsideWithTimeoutPropagatesOutOfIt() throws {
        let q = Queue<Int>()
        try q.put(1)
        var seen: [Int] = []
        XCTAssertThrowsError(try withTimeout(0.02) { () throws -> Void in
            for item in q { seen.append(item) }
            try Green.sleep(0)
        }) { XCTAssertTrue($0 is TimeoutError, "\($0)") }
        XCTAssertEqual(seen, [1])
        try Green.sleep(0)
    }

    // MARK: - Deadlock report

    func testGetOnAQueueNobodyCanFillThrowsWouldBlockForever() throws {
        let q = Queue<Int>()
        XCTAssertThrowsError(try q.get()) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, let parked) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "Queue.get")
            XCTAssertEqual(parked, [])
        }
        XCTAssertEqual(q.waitingGetters, 0)
        try q.put(1)
        XCTAssertEqual(q.count, 1)
    }

    func testTheDeadlockReportNamesAGreenletStuckInPut() throws {
        let full = Queue<Int>(maxSize: 1)
        try full.put(0)
        let empty = Queue<Int>()
        let stuck = spawn(name: "stuck-putter") { try full.put(1) }
        defer { cleanUp([stuck]) }
        try Green.sleep(0)
        XCTAssertThrowsError(try empty.get()) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, let parked) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "Queue.get")
            XCTAssertEqual(parked, ["stuck-putter in Queue.put"])
        }
        XCTAssertEqual(try full.get(), 0)
        _ = try withTimeout(5) { try stuck.join() }
        XCTAssertTrue(stuck.isSuccessful)
        XCTAssertEqual(try full.get(), 1)
    }

    func testPutOnAFullQueueNobodyCanDrainThrowsWouldBlockForever() throws {
        let q = Queue<Int>(maxSize: 1)
        try q.put(1)
        XCTAssertThrowsError(try q.put(2)) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, _) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "Queue.put")
        }
        XCTAssertEqual(q.waitingPutters, 0)
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(try q.get(), 1)
        XCTAssertThrowsError(try q.getNowait())
    }

    // MARK: - Many greenlets

    func testAThousandProducersAndAThousandConsumersThroughABoundedQueueDeliverEveryItemOnce() throws {
        let q = Queue<Int>(maxSize: 10)
        var received: [Int] = []
        let producers = (0..<1000).map { i in spawn { try q.put(i) } }
        let consumers = (0..<1000).map { _ in spawn { received.append(try q.get()) } }
        defer { cleanUp(producers + consumers) }
        _ = try withTimeout(30) { try joinAll(producers + consumers, raiseError: true) }
        XCTAssertEqual(received.count, 1000)
        XCTAssertEqual(Set(received), Set(0..<1000))
        XCTAssertTrue(q.isEmpty)
        XCTAssertEqual(q.waitingGetters, 0)
        XCTAssertEqual(q.waitingPutters, 0)
    }

    func testManyProducersAndForInConsumersDeliverEveryItemExactlyOnceInEachProducersOrder() throws {
        let q = Queue<(producer: Int, seq: Int)>(maxSize: 8)
        let producerCount = 100, perProducer = 50
        var counts = [Int: Int]()
        // What each consumer saw from each producer, in order.
        var lastSeen = [[Int]](repeating: [Int](repeating: -1, count: producerCount), count: 10)
        var outOfOrder = 0
        let producers = (0..<producerCount).map { p in
            spawn {
                for s in 0..<perProducer {
                    try q.put((p, s))
                    if s % 10 == 0 { try Green.sleep(0) }
                }
            }
        }
        let consumers = (0..<10).map { c in
            spawn {
                for item in q {
                    counts[item.producer * perProducer + item.seq, default: 0] += 1
                    if item.seq <= lastSeen[c][item.producer] { outOfOrder += 1 }
                    lastSeen[c][item.producer] = item.seq
                }
            }
        }
        defer { cleanUp(producers + consumers) }
        _ = try withTimeout(30) {
            try joinAll(producers, raiseError: true)
            q.close()
            return try joinAll(consumers, raiseError: true)
        }
        XCTAssertEqual(counts.count, producerCount * perProducer)
        XCTAssertTrue(counts.values.allSatisfy { $0 == 1 }, "some item was delivered twice")
        XCTAssertEqual(outOfOrder, 0)
    }

    // MARK: - LifoQueue

    func testLifoQueueHandsOutTheNewestItemFirst() throws {
        let q = LifoQueue<Int>()
        for i in 1...4 { try q.put(i) }
        XCTAssertEqual(q.peek(), 4)
        XCTAssertEqual(try (0..<4).map { _ in try q.get() }, [4, 3, 2, 1])
        XCTAssertThrowsError(try q.getNowait()) { XCTAssertTrue($0 is QueueEmpty, "\($0)") }
    }

    func testLifoQueueHandsAPutStraightToAWaitingGetter() throws {
        let q = LifoQueue<Int>()
        let getters = (0..<2).map { _ in spawn { () throws -> Int in try q.get() } }
        defer { cleanUp(getters) }
        try Green.sleep(0)
        try q.put(1)
        try q.put(2)
        _ = try withTimeout(5) { try joinAll(getters, raiseError: true) }
        XCTAssertEqual(try getters.map { try $0.get() }, [1, 2])
    }

    func testBoundedLifoQueueWaitsWhileFullAndClosesLikeAQueue() throws {
        let q = LifoQueue<Int>(maxSize: 2)
        try q.put(1)
        try q.put(2)
        XCTAssertThrowsError(try q.putNowait(3)) { XCTAssertTrue($0 is QueueFull, "\($0)") }
        let putter = spawn { try q.put(3) }
        defer { cleanUp([putter]) }
        try Green.sleep(0)
        XCTAssertEqual(try q.get(), 2)
        _ = try withTimeout(5) { try putter.join() }
        XCTAssertTrue(putter.isSuccessful)
        XCTAssertEqual(q.count, 2)
        q.close()
        var rest: [Int] = []
        for item in q { rest.append(item) }
        XCTAssertEqual(rest, [3, 1])
    }

    // MARK: - PriorityQueue

    func testPriorityQueueHandsOutTheSmallestItemFirst() throws {
        let q = PriorityQueue<Int>()
        for i in [5, 1, 4, 2, 3, 0] { try q.put(i) }
        XCTAssertEqual(q.peek(), 0)
        XCTAssertEqual(try (0..<6).map { _ in try q.get() }, [0, 1, 2, 3, 4, 5])
    }

    func testPriorityQueueHandsOutEqualItemsInTheOrderTheyWerePut() throws {
        let q = PriorityQueue<Job>()
        let jobs = [Job(2, "a"), Job(1, "b"), Job(2, "c"), Job(1, "d"), Job(0, "e"),
                    Job(2, "f"), Job(1, "g"), Job(0, "h")]
        for j in jobs { try q.put(j) }
        XCTAssertEqual(q.peek()?.payload, "e")
        var out: [String] = []
        while let j = try? q.getNowait() { out.append(j.payload) }
        XCTAssertEqual(out, ["e", "h", "b", "d", "g", "a", "c", "f"])
    }

    func testPriorityQueueKeepsPutOrderForEqualItemsAcrossManyPuts() throws {
        let q = PriorityQueue<Job>()
        var rng = SplitMix64(seed: 42)
        var expected: [[String]] = [[], [], [], []]
        for i in 0..<400 {
            let p = Int(rng.next() % 4)
            expected[p].append("\(i)")
            try q.put(Job(p, "\(i)"))
        }
        var out: [[String]] = [[], [], [], []]
        var priorities: [Int] = []
        while let j = try? q.getNowait() {
            out[j.priority].append(j.payload)
            priorities.append(j.priority)
        }
        XCTAssertEqual(priorities, priorities.sorted())
        XCTAssertEqual(out, expected)
    }

    func testABoundedPriorityQueueOrdersTheItemsOfWaitingPuttersOnceTheyAreIn() throws {
        let q = PriorityQueue<Job>(maxSize: 2)
        try q.put(Job(5, "a"))
        try q.put(Job(4, "b"))
        let putters = [Job(3, "p3"), Job(1, "p1")].map { j in spawn { try q.put(j) } }
        defer { cleanUp(putters) }
        try Green.sleep(0)
        XCTAssertEqual(q.waitingPutters, 2)
        // Each get lets the next waiting putter's item in (in the order the
        // putters came), where it takes its place by priority.
        XCTAssertEqual(try q.get().payload, "b")    // p3 moves in
        XCTAssertEqual(try q.get().payload, "p3")   // p1 moves in
        XCTAssertEqual(try q.get().payload, "p1")
        XCTAssertEqual(try q.get().payload, "a")
        _ = try withTimeout(5) { try joinAll(putters, raiseError: true) }
        XCTAssertTrue(q.isEmpty)
    }
}

/// Ordered by `priority` only: `payload` tells equal items apart.
private struct Job: Comparable {
    let priority: Int
    let payload: String
    init(_ priority: Int, _ payload: String) {
        self.priority = priority
        self.payload = payload
    }
    static func < (a: Job, b: Job) -> Bool { a.priority < b.priority }
    static func == (a: Job, b: Job) -> Bool { a.priority == b.priority }
}

/// Kills whatever is still running of `greenlets` and waits for them
/// (bounded), so that a failing test does not leave greenlets behind.
