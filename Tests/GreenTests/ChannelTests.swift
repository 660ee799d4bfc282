import Green
import XCTest
import GreenTestSupport

/// `Channel`: a rendezvous. `put` returns once a getter took the item,
/// `get` once a putter offered one; nothing is ever stored.
final class ChannelTests: GreenTestCase {
    func testPutWaitsUntilAGetterTakesTheItem() throws {
        let ch = Channel<Int>()
        var log: [String] = []
        let putter = spawn {
            log.append("put starts")
            try ch.put(1)
            log.append("put returned")
        }
        defer { cleanUp([putter]) }
        try Green.sleep(0)
        try Green.sleep(0)
        // Nobody took the item: the putter still waits, and nothing is stored.
        XCTAssertEqual(log, ["put starts"])
        XCTAssertEqual(ch.count, 0)
        XCTAssertEqual(ch.waitingPutters, 1)
        XCTAssertEqual(try ch.get(), 1)
        log.append("get returned")
        _ = try withTimeout(5) { try putter.join() }
        XCTAssertEqual(log, ["put starts", "get returned", "put returned"])
        XCTAssertEqual(ch.waitingPutters, 0)
    }

    func testGetWaitsUntilAPutterOffersAnItem() throws {
        // A getter waits: the put hands the item over and returns at once.
        try checkAPutHandsTheItemToTheWaitingGetter(Channel<String>(), "hello")
    }

    func testPingPongBetweenTwoGreenletsAlternatesStrictly() throws {
        let ping = Channel<Int>()
        let pong = Channel<Int>()
        var log: [String] = []
        let peer = spawn {
            for _ in 0..<5 {
                let n = try ping.get()
                log.append("peer got \(n)")
                try pong.put(n + 1)
            }
        }
        defer { cleanUp([peer]) }
        try withTimeout(5) {
            var n = 0
            for _ in 0..<5 {
                try ping.put(n)
                n = try pong.get()
                log.append("main got \(n)")
            }
        }
        _ = try withTimeout(5) { try peer.join() }
        XCTAssertEqual(log, (0..<5).flatMap { ["peer got \($0)", "main got \($0 + 1)"] })
    }

    func testPuttersAreServedInTheOrderTheyStartedWaiting() throws {
        let ch = Channel<String>()
        let putters = ["a", "b", "c"].map { item in spawn { try ch.put(item) } }
        defer { cleanUp(putters) }
        try Green.sleep(0)
        XCTAssertEqual(ch.waitingPutters, 3)
        XCTAssertEqual(try (0..<3).map { _ in try ch.get() }, ["a", "b", "c"])
        _ = try withTimeout(5) { try joinAll(putters, raiseError: true) }
    }

    func testGettersAreServedInTheOrderTheyStartedWaiting() throws {
        try checkWaitingGettersAreServedInOrder(Channel<Int>(), items: [7, 8, 9])
    }

    func testPutNowaitWithoutAWaitingGetterThrowsQueueFull() throws {
        let ch = Channel<Int>()
        XCTAssertTrue(ch.isFull)
        XCTAssertThrowsError(try ch.putNowait(1)) { XCTAssertTrue($0 is QueueFull, "\($0)") }
        XCTAssertEqual(ch.count, 0)
        XCTAssertThrowsError(try ch.getNowait()) { XCTAssertTrue($0 is QueueEmpty, "\($0)") }
    }

    func testPutNowaitHandsTheItemToAWaitingGetter() throws {
        let ch = Channel<Int>()
        let getter = spawn { () throws -> Int in try ch.get() }
        defer { cleanUp([getter]) }
        try Green.sleep(0)
        XCTAssertFalse(ch.isFull)
        try ch.putNowait(5)
        XCTAssertEqual(try withTimeout(5) { try getter.get() }, 5)
    }

    func testGetNowaitTakesTheItemOfAWaitingPutter() throws {
        let ch = Channel<Int>()
        let putter = spawn { try ch.put(6) }
        defer { cleanUp([putter]) }
        try Green.sleep(0)
        XCTAssertEqual(ch.peek(), nil)
        XCTAssertEqual(try ch.getNowait(), 6)
        _ = try withTimeout(5) { try putter.join() }
        XCTAssertTrue(putter.isSuccessful)
    }

    func testPutWithTimeoutThrowsQueueFullAndTheItemIsNeverDelivered() throws {
        let ch = Channel<Int>()
        XCTAssertThrowsError(try ch.put(1, timeout: 0.01)) { XCTAssertTrue($0 is QueueFull, "\($0)") }
        XCTAssertEqual(ch.waitingPutters, 0)
        XCTAssertThrowsError(try ch.getNowait()) { XCTAssertTrue($0 is QueueEmpty, "\($0)") }
    }

    func testGetWithTimeoutThrowsQueueEmpty() throws {
        let ch = Channel<Int>()
        XCTAssertThrowsError(try ch.get(timeout: 0.01)) { XCTAssertTrue($0 is QueueEmpty, "\($0)") }
        XCTAssertEqual(ch.waitingGetters, 0)
        XCTAssertThrowsError(try ch.putNowait(1)) { XCTAssertTrue($0 is QueueFull, "\($0)") }
    }

    func testAPutterThatTimesOutLeavesTheWaitListSoGetsTakeTheOthersItemsInOrder() throws {
        let ch = Channel<String>()
        try checkATimedOutPutterLeavesTheLine(of: ch, logging: "taken") {
            XCTAssertEqual(try ch.get(), "a")
            XCTAssertEqual(try ch.get(), "c")
        }
        XCTAssertThrowsError(try ch.getNowait())
    }

    func testAKilledPutterItemIsNeverDelivered() throws {
        let ch = Channel<String>()
        try checkAKilledWaiterGetsNothing(killBlocking: false, wait: { who in try ch.put(who) }) {
            XCTAssertEqual(try ch.get(), "survivor")
        }
        XCTAssertThrowsError(try ch.getNowait())
    }

    func testAKillThatArrivesAfterTheItemWasTakenLetsPutReturnNormally() throws {
        let ch = Channel<Int>()
        let putReturned = try checkAKillAfterTheGrantTakesNothingBack(
            wait: { try ch.put(1); return true },
            grant: { XCTAssertEqual(try ch.get(), 1) })
        XCTAssertEqual(putReturned, true)
    }

    func testCloseWakesWaitingPuttersAndGettersWithQueueClosed() throws {
        let withPutter = Channel<Int>()
        let withGetter = Channel<Int>()
        let putter = spawn { try withPutter.put(1) }
        let getter = spawn { () throws -> Int in try withGetter.get() }
        defer { cleanUp([putter, getter]) }
        try Green.sleep(0)
        withPutter.close()
        withGetter.close()
        _ = try withTimeout(5) { try joinAll([putter, getter]) }
        XCTAssertThrowsError(try putter.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        XCTAssertThrowsError(try getter.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        // The closed putter's item was not delivered.
        XCTAssertThrowsError(try withPutter.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
    }

    func testPutAndGetAfterCloseThrowQueueClosed() throws {
        let ch = Channel<Int>()
        ch.close()
        XCTAssertThrowsError(try ch.put(1)) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        XCTAssertThrowsError(try ch.get()) { XCTAssertTrue($0 is QueueClosed, "\($0)") }
        XCTAssertNil(try ch.receive())
    }

    func testForInOverAChannelEndsWhenTheSenderCloses() throws {
        let ch = Channel<Int>()
        var seen: [Int] = []
        let sender = spawn {
            for i in 0..<10 { try ch.put(i) }
            ch.close()
        }
        defer { cleanUp([sender]) }
        try withTimeout(5) {
            for item in ch { seen.append(item) }
        }
        _ = try withTimeout(5) { try sender.join() }
        XCTAssertTrue(sender.isSuccessful)
        XCTAssertEqual(seen, Array(0..<10))
    }

    func testPutOnAChannelNobodyReadsThrowsWouldBlockForever() throws {
        let ch = Channel<Int>()
        XCTAssertThrowsError(try ch.put(1)) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, let parked) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "Queue.put")
            XCTAssertEqual(parked, [])
        }
        XCTAssertEqual(ch.waitingPutters, 0)
        XCTAssertThrowsError(try ch.getNowait())
    }

    func testManyPuttersAndGettersThroughAChannelDeliverEveryItemOnce() throws {
        try checkManyPuttersAndGettersDeliverEveryItemOnce(through: Channel<Int>(), count: 500)
    }
}

