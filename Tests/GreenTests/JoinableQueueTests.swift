import Green
import XCTest
import GreenTestSupport

/// `JoinableQueue`: every item put is a task; `join` waits until each one
/// was marked done with `taskDone`.
final class JoinableQueueTests: GreenTestCase {
    func testJoinReturnsAtOnceWhenNoTaskIsUnfinished() throws {
        let q = JoinableQueue<Int>()
        XCTAssertEqual(q.unfinishedTasks, 0)
        XCTAssertTrue(try q.join())
        XCTAssertTrue(try q.join(timeout: 0))
    }

    func testEveryItemPutIsAnUnfinishedTaskUntilTaskDone() throws {
        let q = JoinableQueue<Int>()
        try q.put(1)
        try q.putNowait(2)
        XCTAssertEqual(q.unfinishedTasks, 2)
        // Taking an item does not finish its task.
        _ = try q.get()
        _ = try q.get()
        XCTAssertEqual(q.unfinishedTasks, 2)
        try q.taskDone()
        XCTAssertEqual(q.unfinishedTasks, 1)
        try q.taskDone()
        XCTAssertEqual(q.unfinishedTasks, 0)
    }

    func testJoinReturnsExactlyWhenTheLastTaskDoneArrives() throws {
        let q = JoinableQueue<Int>()
        for i in 0..<3 { try q.put(i) }
        var joined = false
        let joiner = spawn { try q.join(); joined = true }
        defer { cleanUp([joiner]) }
        try Green.sleep(0)
        for n in 1...2 {
            _ = try q.get()
            try q.taskDone()
            try Green.sleep(0)
            try Green.sleep(0)
            XCTAssertFalse(joined, "join returned after \(n) of 3 tasks were done")
        }
        _ = try q.get()
        try q.taskDone()
        _ = try withTimeout(5) { try joiner.join() }
        XCTAssertTrue(joiner.isSuccessful)
        XCTAssertTrue(joined)
    }

    func testJoinDoesNotReturnBeforeTheConsumerMarksTheLastTaskDone() throws {
        let q = JoinableQueue<Int>()
        for i in 0..<10 { try q.put(i) }
        var lastTaskFinishing = false
        var sawLastTaskFinishing: Bool?
        let consumer = spawn {
            for i in 0..<10 {
                _ = try q.get()
                try Green.sleep(0)
                if i == 9 { lastTaskFinishing = true }
                try q.taskDone()
                try Green.sleep(0)
            }
        }
        let joiner = spawn {
            try q.join()
            sawLastTaskFinishing = lastTaskFinishing
        }
        defer { cleanUp([consumer, joiner]) }
        _ = try withTimeout(5) { try joinAll([consumer, joiner], raiseError: true) }
        XCTAssertEqual(sawLastTaskFinishing, true)
        XCTAssertEqual(q.unfinishedTasks, 0)
    }

    func testTaskDoneCalledMoreOftenThanItemsWerePutThrows() throws {
        let q = JoinableQueue<Int>()
        XCTAssertThrowsError(try q.taskDone()) {
            XCTAssertTrue($0 is JoinableQueue<Int>.TooManyTaskDone, "\($0)")
        }
        try q.put(1)
        _ = try q.get()
        try q.taskDone()
        XCTAssertThrowsError(try q.taskDone()) {
            XCTAssertTrue($0 is JoinableQueue<Int>.TooManyTaskDone, "\($0)")
        }
        XCTAssertEqual(q.unfinishedTasks, 0)
    }

    func testJoinWithTimeoutReturnsFalseWhileTasksRemain() throws {
        let q = JoinableQueue<Int>()
        try q.put(1)
        XCTAssertFalse(try q.join(timeout: 0.01))
        XCTAssertEqual(q.unfinishedTasks, 1)
        _ = try q.get()
        try q.taskDone()
        XCTAssertTrue(try q.join(timeout: 0.01))
    }

    func testAJoinerThatTimesOutLeavesTheOthersWaiting() throws {
        let q = JoinableQueue<Int>()
        try q.put(1)
        try checkATimedOutWaiterLeavesTheLine(
            first: { log in try q.join(); log("first") },
            middle: { log in log("middle \(try q.join(timeout: 0.01))") },
            last: { log in try q.join(); log("last") },
            timedOut: "middle false",
            serve: { _ in
                _ = try q.get()
                try q.taskDone()
            },
            served: ["first", "last"])
    }

    func testAKilledJoinerLeavesTheOthersWaiting() throws {
        let q = JoinableQueue<Int>()
        try q.put(1)
        try checkAKilledWaiterGetsNothing(killBlocking: true, wait: { _ in try q.join() }) {
            _ = try q.get()
            try q.taskDone()
        }
    }

    func testItemsHandedStraightToAWaitingGetterCountAsTasks() throws {
        let q = JoinableQueue<Int>()
        let getter = spawn { () throws -> Int in try q.get() }
        defer { cleanUp([getter]) }
        try Green.sleep(0)
        try q.put(1)
        XCTAssertEqual(q.unfinishedTasks, 1)
        XCTAssertEqual(try withTimeout(5) { try getter.get() }, 1)
        XCTAssertFalse(try q.join(timeout: 0.01))
        try q.taskDone()
        XCTAssertTrue(try q.join(timeout: 0.01))
    }

    func testItemsOfPuttersThatWaitedOnAFullQueueCountAsTasks() throws {
        let q = JoinableQueue<String>(maxSize: 1)
        let putter = try spawnAPutterWaiting(toPut: "b", into: q, fullWith: ["a"])
        defer { cleanUp([putter]) }
        XCTAssertEqual(q.unfinishedTasks, 1)
        XCTAssertEqual(try q.get(), "a")        // "b" moves in from the waiting putter
        _ = try withTimeout(5) { try putter.join() }
        XCTAssertTrue(putter.isSuccessful)
        XCTAssertEqual(q.unfinishedTasks, 2, "the waiting putter's item was not counted as a task")
        try q.taskDone()                         // "a" done; "b" is not
        XCTAssertFalse(try q.join(timeout: 0.01), "join returned while \"b\" was still unfinished")
        XCTAssertEqual(try q.get(), "b")
        XCTAssertNoThrow(try q.taskDone())
        XCTAssertTrue(try q.join(timeout: 0.01))
    }

    func testItemsHandedOverByARendezvousCountAsTasks() throws {
        let q = JoinableQueue<Int>(maxSize: 0)
        let putter = spawn { try q.put(1) }
        defer { cleanUp([putter]) }
        try Green.sleep(0)
        XCTAssertEqual(try q.get(), 1)           // taken from the waiting putter
        _ = try withTimeout(5) { try putter.join() }
        XCTAssertEqual(q.unfinishedTasks, 1, "the item taken from a waiting putter was not counted as a task")
        XCTAssertNoThrow(try q.taskDone())
        XCTAssertTrue(try q.join(timeout: 0.01))
    }

    func testWorkersOverAJoinableQueueFinishEveryJobBeforeJoinReturns() throws {
        let work = JoinableQueue<Int>(maxSize: 5)
        var processed = Set<Int>()
        var doneCount = 0
        let workers = (0..<4).map { i in
            spawn(name: "worker-\(i)") {
                for job in work {
                    try Green.sleep(0)
                    processed.insert(job)
                    doneCount += 1
                    try work.taskDone()
                }
            }
        }
        let boss = spawn(name: "boss") { () throws -> Int in
            for job in 0..<100 { try work.put(job) }
            try work.join()
            return doneCount
        }
        defer { cleanUp(workers + [boss]) }
        // The workers loop until the queue is closed: the boss must end first.
        var finished = completions(of: workers + [boss])
        let first = try withTimeout(10) { try finished.next() }
        guard let first, first === boss else {
            return XCTFail("\(first?.name ?? "none") ended before the boss: \(String(describing: first?.error))")
        }
        XCTAssertEqual(try boss.get(), 100)
        XCTAssertEqual(processed, Set(0..<100))
        work.close()
        _ = try withTimeout(5) { try joinAll(workers, raiseError: true) }
        XCTAssertEqual(work.unfinishedTasks, 0)
    }
}

