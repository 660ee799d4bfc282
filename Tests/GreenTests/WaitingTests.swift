import Green
import XCTest
import GreenTestSupport

/// Waiting for several greenlets: `wait(any:)`, `Completions`, `joinAll`,
/// `killAll`.
final class WaitingTests: GreenTestCase {
    /// Greenlets that each finish when their event is set.
    private func gated(_ count: Int) -> (events: [Event], greenlets: [Greenlet<Int>]) {
        let events = (0..<count).map { _ in Event() }
        let greenlets = (0..<count).map { i in
            spawn(name: "gated-\(i)") { () throws -> Int in try events[i].wait(); return i }
        }
        return (events, greenlets)
    }

    func testCompletionsYieldGreenletsInFinishOrder() throws {
        let (events, gs) = gated(4)
        var done = completions(of: gs)
        XCTAssertEqual(done.count, 4)
        var order: [String] = []
        // Finish them in an order unlike the array's.
        for i in [2, 0, 3, 1] {
            events[i].set()
            guard let g = try done.next() else { return XCTFail("ran out after \(order)") }
            order.append(g.name)
        }
        XCTAssertEqual(order, ["gated-2", "gated-0", "gated-3", "gated-1"])
        XCTAssertEqual(done.count, 0)
        XCTAssertNil(try done.next())
    }

    func testCompletionsReturnEachGreenletExactlyOnce() throws {
        let gs = (0..<30).map { i in
            spawn(name: "c\(i)") { () throws -> Int in
                for _ in 0..<(i % 3) { try Green.sleep(0) }
                return i
            }
        }
        var names: [String] = []
        var done = completions(of: gs)
        while let g = try done.next() { names.append(g.name) }
        XCTAssertEqual(names.count, 30)
        XCTAssertEqual(Set(names), Set(gs.map(\.name)))
    }

    func testCompletionsReturnAlreadyFinishedGreenletsFirstInArrayOrder() throws {
        let (events, gs) = gated(3)
        events[2].set()
        events[1].set()
        try joinAll([gs[1], gs[2]])
        var done = completions(of: gs)
        XCTAssertTrue(try done.next() === gs[1])
        XCTAssertTrue(try done.next() === gs[2])
        events[0].set()
        XCTAssertTrue(try done.next() === gs[0])
        XCTAssertNil(try done.next())
    }

    func testCompletionsNextWithTimeoutReturnsNilWhenNoneFinishes() throws {
        let (events, gs) = gated(2)
        var done = completions(of: gs)
        XCTAssertNil(try done.next(timeout: 0.01))
        XCTAssertEqual(done.count, 2)
        for e in events { e.set() }
        try joinAll(gs)
    }

    func testWaitAnyReturnsTheFirstToFinish() throws {
        let (events, gs) = gated(3)
        events[1].set()
        let first = try Green.wait(any: gs)
        XCTAssertTrue(first === gs[1])
        for e in events { e.set() }
        try joinAll(gs)
    }

    func testWaitAnyWithTimeoutReturnsNilWhenNoneFinishes() throws {
        let (events, gs) = gated(2)
        XCTAssertNil(try Green.wait(any: gs, timeout: 0.01))
        XCTAssertFalse(gs.contains { $0.isReady })
        for e in events { e.set() }
        try joinAll(gs)
    }

    func testWaitAnyOnAnEmptyArrayReturnsNil() throws {
        XCTAssertNil(try Green.wait(any: []))
    }

    func testJoinAllWaitsForEveryGreenlet() throws {
        var finished = 0
        let gs = (0..<20).map { i in
            spawn {
                for _ in 0..<(i % 4) { try Green.sleep(0) }
                finished += 1
            }
        }
        let joined = try joinAll(gs)
        XCTAssertEqual(finished, 20)
        XCTAssertEqual(joined.count, 20)
    }

    func testJoinAllDoesNotThrowAFailureWithoutRaiseError() throws {
        let ok = spawn { 1 }
        let bad = spawn { () throws -> Int in throw TestError("quiet") }
        let joined = try joinAll([ok, bad])
        XCTAssertEqual(joined.count, 2)
        XCTAssertEqual(bad.error as? TestError, TestError("quiet"))
    }

    func testJoinAllWithRaiseErrorThrowsTheFirstFailure() throws {
        let never = Event()
        let slow = spawn { try never.wait() }
        let failing = spawn { () throws -> Int in
            try Green.sleep(0)
            throw TestError("first failure")
        }
        let laterFailing = spawn { () throws -> Int in
            try Green.sleep(0.01)
            throw TestError("second failure")
        }
        XCTAssertThrowsError(try joinAll([slow, failing, laterFailing], raiseError: true)) {
            XCTAssertEqual($0 as? TestError, TestError("first failure"))
        }
        // It threw as soon as one failed: the slow one is still running.
        XCTAssertFalse(slow.isReady)
        try killAll([slow, laterFailing])
        XCTAssertTrue(slow.error is GreenletExit)
        _ = laterFailing.error
    }

    func testJoinAllWithTimeoutReturnsTheFinishedOnes() throws {
        let (events, gs) = gated(3)
        events[0].set()
        let joined = try joinAll(gs, timeout: 0.02)
        XCTAssertEqual(joined.count, 1)
        XCTAssertTrue(joined.first === gs[0])
        for e in events { e.set() }
        try joinAll(gs)
    }

    func testKillAllKillsEveryGreenlet() throws {
        var defers = 0
        let gs = (0..<10).map { i in
            spawn {
                defer { defers += 1 }
                if i % 2 == 0 { try Green.sleep(10) } else { try Event().wait() }
            }
        }
        // Some started, some not yet.
        try Green.sleep(0)
        let unstarted = spawn { defers += 100 }
        try killAll(gs + [unstarted])
        XCTAssertEqual(defers, 10)
        for g in gs + [unstarted] {
            XCTAssertTrue(g.isReady)
            XCTAssertTrue(g.error is GreenletExit)
        }
    }

    func testKillAllWithACustomErrorAndNoBlockingThenJoinAll() throws {
        let gs = (0..<5).map { _ in spawn { try Green.sleep(10) } }
        try Green.sleep(0)
        try killAll(gs, TestError("stop"), block: false)
        try joinAll(gs)
        for g in gs { XCTAssertEqual(g.error as? TestError, TestError("stop")) }
    }
}
