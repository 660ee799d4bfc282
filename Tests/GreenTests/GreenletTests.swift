import Green
import XCTest
import GreenTestSupport

/// A greenlet's outcome, state, identity and callbacks.
final class GreenletTests: GreenTestCase {
    func testTheBodyRunsOnlyWhenTheSpawnerBlocks() throws {
        var ran = false
        let g = spawn { ran = true }
        XCTAssertFalse(ran)
        XCTAssertFalse(g.isStarted)
        try Green.sleep(0)
        XCTAssertTrue(ran)
        XCTAssertTrue(g.isReady)
    }

    func testAnOwnerKeepingItsFinishedGreenletIsReleased() throws {
        // owner -> greenlet -> body -> owner: the cycle ends with the body.
        final class Owner {
            var task: Greenlet<Int>?
            var runs = 0
            func start() { task = spawn { self.runs += 1; return self.runs } }
        }
        weak var weakOwner: Owner?
        weak var weakKilled: Owner?
        try {
            let owner = Owner()
            weakOwner = owner
            owner.start()
            XCTAssertEqual(try owner.task!.get(), 1)
            let killed = Owner()
            weakKilled = killed
            killed.start()
            try killed.task!.kill()     // before it ever ran
        }()
        XCTAssertNil(weakOwner, "a finished greenlet kept what its body captured")
        XCTAssertNil(weakKilled, "a greenlet killed before it ran kept what its body captured")
    }

    func testGetReturnsTheValue() throws {
        let g = spawn { () throws -> Int in try Green.sleep(0); return 40 + 2 }
        XCTAssertEqual(try g.get(), 42)
        // Again, once finished: the value is kept.
        XCTAssertEqual(try g.get(), 42)
    }

    func testGetRethrowsTheGreenletsError() throws {
        let g = spawn { () throws -> Int in try Green.sleep(0); throw TestError("boom") }
        XCTAssertThrowsError(try g.get()) { XCTAssertEqual($0 as? TestError, TestError("boom")) }
        // And again: the error is the greenlet's outcome.
        XCTAssertThrowsError(try g.get()) { XCTAssertEqual($0 as? TestError, TestError("boom")) }
    }

    func testStateFlagsFollowTheLifecycle() throws {
        let go = Event()
        let g = spawn { () throws -> Int in try go.wait(); return 7 }
        // Spawned, not started.
        XCTAssertFalse(g.isStarted)
        XCTAssertFalse(g.isReady)
        XCTAssertFalse(g.isSuccessful)
        XCTAssertNil(g.value)
        try Green.sleep(0)
        // Started, parked in the event.
        XCTAssertTrue(g.isStarted)
        XCTAssertFalse(g.isReady)
        XCTAssertFalse(g.isSuccessful)
        XCTAssertNil(g.value)
        go.set()
        try g.join()
        // Finished.
        XCTAssertFalse(g.isStarted)
        XCTAssertTrue(g.isReady)
        XCTAssertTrue(g.isSuccessful)
        XCTAssertEqual(g.value, 7)
        XCTAssertNil(g.error)
    }

    func testAFailedGreenletHasItsErrorAndNoValue() throws {
        let g = spawn { () throws -> Int in throw TestError("failed") }
        try g.join()
        XCTAssertTrue(g.isReady)
        XCTAssertFalse(g.isSuccessful)
        XCTAssertNil(g.value)
        XCTAssertEqual(g.error as? TestError, TestError("failed"))
    }

    func testJoinWithTimeoutReturnsFalseWhileRunningAndTrueAfter() throws {
        let go = Event()
        let g = spawn { try go.wait() }
        XCTAssertFalse(try g.join(timeout: 0.01))
        XCTAssertFalse(g.isReady)
        go.set()
        XCTAssertTrue(try g.join(timeout: 10))
        XCTAssertTrue(g.isSuccessful)
        // Joining a finished greenlet returns at once.
        XCTAssertTrue(try g.join(timeout: 0))
    }

    func testGetWithTimeoutThrowsTimeoutErrorWhileRunning() throws {
        let go = Event()
        let g = spawn { () throws -> Int in try go.wait(); return 1 }
        XCTAssertThrowsError(try g.get(timeout: 0.01)) { XCTAssertTrue($0 is TimeoutError, "\($0)") }
        XCTAssertFalse(g.isReady)
        go.set()
        XCTAssertEqual(try g.get(timeout: 10), 1)
    }

    func testAGreenletJoiningItselfThrowsJoinSelf() throws {
        let g = spawn(name: "narcissus") { () throws -> String in
            do {
                try AnyGreenlet.current.join()
                return "joined"
            } catch GreenError.joinSelf(let name) {
                return "joinSelf(\(name))"
            }
        }
        XCTAssertEqual(try g.get(), "joinSelf(narcissus)")
    }

    func testTheMainGreenletJoiningItselfThrowsJoinSelf() throws {
        let me = AnyGreenlet.current
        XCTAssertThrowsError(try me.join()) { error in
            guard case GreenError.joinSelf(let name) = error else {
                return XCTFail("expected joinSelf, got \(error)")
            }
            XCTAssertEqual(name, me.name)
        }
    }

    func testLinkRunsOnceWhenTheGreenletFinishes() throws {
        var calls: [Int?] = []
        let go = Event()
        let g = spawn { () throws -> Int in try go.wait(); return 5 }
        g.link { calls.append($0.value) }
        try Green.sleep(0)
        XCTAssertEqual(calls, [])
        go.set()
        try g.join()
        // The callback saw the finished greenlet, with its value.
        XCTAssertEqual(calls, [5])
        try g.join()
        try g.kill()
        _ = try g.get()
        XCTAssertEqual(calls, [5])
    }

    func testLinkRunsCallbacksInTheOrderTheyWereAdded() throws {
        var order: [String] = []
        let g = spawn { try Green.sleep(0) }
        g.link { _ in order.append("first") }
        g.linkAny { _ in order.append("second") }
        g.link { _ in order.append("third") }
        try g.join()
        XCTAssertEqual(order, ["first", "second", "third"])
    }

    func testLinkOnAFinishedGreenletRunsAtOnce() throws {
        let g = spawn { 3 }
        try g.join()
        var calls = 0
        g.link { XCTAssertEqual($0.value, 3); calls += 1 }
        XCTAssertEqual(calls, 1)
        g.linkAny { _ in calls += 1 }
        XCTAssertEqual(calls, 2)
        try Green.sleep(0)
        XCTAssertEqual(calls, 2)
    }

    func testLinkAnyRunsOnceWhenTheGreenletFails() throws {
        var seen: [String] = []
        let g = spawn(name: "failing") { () throws -> Int in try Green.sleep(0); throw TestError("x") }
        g.linkAny { seen.append("\($0.name): \($0.error.map { "\($0)" } ?? "nil")") }
        try g.join()
        XCTAssertEqual(seen, ["failing: TestError(x)"])
    }

    func testLinkRunsWhenAGreenletIsKilledBeforeItStarts() throws {
        var calls = 0
        let g = spawn { 1 }
        g.link { _ in calls += 1 }
        try g.kill()
        XCTAssertEqual(calls, 1)
        try Green.sleep(0)
        XCTAssertEqual(calls, 1)
    }

    func testTheNameDefaultsToGreenletAndItsID() throws {
        let g = spawn { AnyGreenlet.current.name }
        XCTAssertEqual(g.name, "Greenlet-\(g.id)")
        XCTAssertEqual(try g.get(), "Greenlet-\(g.id)")
        XCTAssertEqual(g.name, "Greenlet-\(g.id)")
    }

    func testACustomNameSticks() throws {
        let g = spawn(name: "worker-7") { () throws -> [String] in
            let before = AnyGreenlet.current.name
            try Green.sleep(0)
            return [before, AnyGreenlet.current.name]
        }
        XCTAssertEqual(g.name, "worker-7")
        XCTAssertEqual(try g.get(), ["worker-7", "worker-7"])
        XCTAssertEqual(g.name, "worker-7")
    }

    func testRenamingAGreenletSticks() throws {
        let go = Event()
        let g = spawn { () throws -> String in try go.wait(); return AnyGreenlet.current.name }
        try Green.sleep(0)
        g.name = "renamed"
        go.set()
        XCTAssertEqual(try g.get(), "renamed")
        XCTAssertEqual(g.name, "renamed")
    }

    func testIDsIncreaseInSpawnOrder() throws {
        let gs = (0..<300).map { _ in spawn { 0 } }
        for (a, b) in zip(gs, gs.dropFirst()) { XCTAssertLessThan(a.id, b.id) }
        try joinAll(gs)
    }

    func testTheParentIDIsTheSpawnersID() throws {
        let parent = spawn { () throws -> (UInt64, UInt64) in
            let child = spawn { 0 }
            try child.join()
            return (AnyGreenlet.current.id, child.parentID)
        }
        XCTAssertEqual(parent.parentID, AnyGreenlet.current.id)
        let (parentID, childsParentID) = try parent.get()
        XCTAssertEqual(parentID, parent.id)
        XCTAssertEqual(childsParentID, parent.id)
    }

    func testCurrentIsTheRunningGreenlet() throws {
        let main = ObjectIdentifier(AnyGreenlet.current)
        var seen: ObjectIdentifier?
        let g = spawn { seen = ObjectIdentifier(AnyGreenlet.current) }
        try g.join()
        XCTAssertEqual(seen, ObjectIdentifier(g))
        XCTAssertEqual(ObjectIdentifier(AnyGreenlet.current), main)
    }

    func testTheDescriptionNamesTheGreenletAndItsState() throws {
        let go = Event()
        let g = spawn(name: "described") { try go.wait() }
        XCTAssertEqual(g.description, "<described pending>")
        try Green.sleep(0)
        XCTAssertEqual(g.description, "<described parked in Event.wait>")
        go.set()
        try g.join()
        XCTAssertEqual(g.description, "<described finished>")
    }

    func testAVoidGreenletFinishesSuccessfully() throws {
        var ran = false
        let g = spawn { ran = true }
        try g.get()
        XCTAssertTrue(ran)
        XCTAssertTrue(g.isSuccessful)
    }
}
