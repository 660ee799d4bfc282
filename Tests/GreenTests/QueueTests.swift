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
        try checkAPutHandsTheItemToTheWaitingGetter(Queue<Int>(), 42)
    }

    func testWaitingGettersAreServedInTheOrderTheyStartedWaiting() throws {
        try checkWaitingGettersAreServedInOrder(Queue<Int>(), items: [10, 11, 12, 13])
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
        try checkATimedOutWaiterLeavesTheLine(
            first: { log in log("first \(try q.get())") },
            middle: { log in
                do {
                    log("middle \(try q.get(timeout: 0.01))")
                } catch is QueueEmpty {
                    log("middle timed out")
                }
            },
            last: { log in log("last \(try q.get())") },
            timedOut: "middle timed out",
            serve: { _ in
                XCTAssertEqual(q.waitingGetters, 2)
                try q.put(1)
                try q.put(2)
            },
            served: ["first 1", "last 2"])
        XCTAssertEqual(q.count, 0)
        XCTAssertEqual(q.waitingGetters, 0)
    }

    func testAGetterKilledWhileWaitingTakesNoItem() throws {
        let q = Queue<Int>()
        let got = try checkAKilledWaiterGetsNothing(
            killBlocking: true,
            wait: { _ in try q.get() },
            afterKill: { XCTAssertEqual(q.waitingGetters, 1) },
            serve: { try q.put(7) })
        XCTAssertEqual(got, 7)
        XCTAssertEqual(q.count, 0)
    }

    func testAPutRightAfterAGetterWasKilledGoesToTheNextGetter() throws {
        let q = Queue<Int>()
        // The victim is ready to throw, still first in line, when the puts come.
        let got = try checkAKilledWaiterGetsNothing(
            killBlocking: false,
            wait: { _ in try q.get() },
            serve: {
                try q.put(1)
                try q.put(2)
            })
        XCTAssertEqual(got, 1)
        // The second item found no getter and was kept.
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(try q.get(), 2)
    }

    func testAKillThatArrivesAfterAGetterWasHandedAnItemDoesNotLoseTheItem() throws {
        let q = Queue<String>()
        let got = try checkAKillAfterTheGrantTakesNothingBack(wait: { try q.get() }, grant: { try q.put("item") })
        XCTAssertEqual(got, "item")
        XCTAssertEqual(q.count, 0)
    }

    func testATimeoutThatExpiresAfterAGetterWasHandedAnItemDoesNotLoseTheItem() throws {
        let q = Queue<String>()
        let got = try checkATimeoutAfterTheGrantTakesNothingBack(wait: { try q.get() }, grant: { try q.put("item") })
        XCTAssertEqual(got, "item")
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
        try checkAFailedPutOnAFullQueueAddsNothing({ try $0.put(2, timeout: 0.01) }) { error in
            guard let e = error as? QueueFull else { return XCTFail("\(error)") }
            XCTAssertEqual(e.maxSize, 1)
        }
    }

    func testAPutterThatTimesOutLeavesTheWaitListAndItsItemIsNeverAdded() throws {
        let q = Queue<String>(maxSize: 1)
        try q.put("x")
        try checkATimedOutPutterLeavesTheLine(of: q, logging: "put") {
            XCTAssertEqual(q.waitingPutters, 2)
            var out: [String] = []
            for _ in 0..<3 { out.append(try q.get()) }
            XCTAssertEqual(out, ["x", "a", "c"])
        }
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
        try checkAKilledWaiterGetsNothing(killBlocking: false, wait: { who in try q.put(who) }) {
            XCTAssertEqual(try q.get(), "x")
            XCTAssertEqual(try q.get(), "survivor")
        }
        XCTAssertTrue(q.isEmpty)
    }

    func testAKillThatArrivesAfterAPuttersItemWasTakenInDoesNotLoseTheItem() throws {
        let q = Queue<String>(maxSize: 1)
        try q.put("x")
        let putReturned = try checkAKillAfterTheGrantTakesNothingBack(
            wait: { try q.put("p"); return true },
            grant: { XCTAssertEqual(try q.get(), "x") })   // "p" moves in; the putter is granted
        XCTAssertEqual(putReturned, true)
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
        try checkClosingEndsEveryWait(of: q, waiting: { q.waitingGetters },
                                      (0..<3).map { _ in spawn { () throws -> Int in try q.get() } })
    }

    func testPuttersWaitingAtCloseGetQueueClosedAndTheirItemsAreNotAdded() throws {
        let q = Queue<String>(maxSize: 1)
        try q.put("x")
        try checkClosingEndsEveryWait(of: q, waiting: { q.waitingPutters },
                                      ["a", "b"].map { item in spawn { try q.put(item) } })
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(try q.get(), "x")
        XCTAssertThrowsError(try q.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
    }

    func testAPutterWhoseItemWasTakenInBeforeCloseReturnsNormally() throws {
        let q = Queue<String>(maxSize: 1)
        let putter = try spawnAPutterWaiting(toPut: "p", into: q, fullWith: ["x"])
        defer { cleanUp([putter]) }
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
        try checkAKillDuringForInEndsTheLoop(over: q) { seen in
            try q.put(1)
            try Green.sleep(0)
            XCTAssertEqual(seen(), [1])
        }
        XCTAssertEqual(q.waitingGetters, 0)
        // The queue is still usable; nobody consumes any more.
        try q.put(2)
        XCTAssertEqual(q.count, 1)
    }

    func testATimeoutDuringForInEndsTheLoopAndIsThrownAtTheNextBlockingCall() throws {
        let q = Queue<Int>()
        try q.put(1)
        try q.put(2)
        XCTAssertEqual(try forInUntilATimeoutExpires(over: q), [1, 2])
        XCTAssertEqual(q.waitingGetters, 0)
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
        try checkAFailedPutOnAFullQueueAddsNothing({ try $0.put(2) }) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, _) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "Queue.put")
        }
    }

    // MARK: - Many greenlets

    func testAThousandProducersAndAThousandConsumersThroughABoundedQueueDeliverEveryItemOnce() throws {
        try checkManyPuttersAndGettersDeliverEveryItemOnce(through: Queue<Int>(maxSize: 10), count: 1000)
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

/// On a full queue of one item, `put` fails (`check` is given the error):
/// it must leave no putter waiting and add nothing.
private func checkAFailedPutOnAFullQueueAddsNothing(_ put: (Queue<Int>) throws -> Void,
                                                    _ check: (any Error) -> Void) throws {
    let q = Queue<Int>(maxSize: 1)
    try q.put(1)
    XCTAssertThrowsError(try put(q)) { check($0) }
    XCTAssertEqual(q.count, 1)
    XCTAssertEqual(q.waitingPutters, 0)
    XCTAssertEqual(try q.get(), 1)
    XCTAssertThrowsError(try q.getNowait())
}

/// Closes `q` while `waiters` wait on it (`waiting()` of them, as the
/// queue counts them): each must end with QueueClosed, and none be
/// counted any more.
private func checkClosingEndsEveryWait<T>(of q: Queue<T>, waiting: () -> Int, _ waiters: [AnyGreenlet],
                                          file: StaticString = #filePath, line: UInt = #line) throws {
    defer { cleanUp(waiters) }
    try Green.sleep(0)
    XCTAssertEqual(waiting(), waiters.count, file: file, line: line)
    q.close()
    _ = try withTimeout(5) { try joinAll(waiters) }
    for w in waiters {
        XCTAssertTrue(w.error is QueueClosed, "\(String(describing: w.error))", file: file, line: line)
    }
    XCTAssertEqual(waiting(), 0, file: file, line: line)
}
