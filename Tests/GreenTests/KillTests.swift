import Green
import XCTest
import GreenTestSupport

/// `kill`: an error thrown into a greenlet at its blocking point.
final class KillTests: GreenTestCase {
    func testKillDuringSleepRunsDefer() throws {
        var deferred = false
        let g = spawn { defer { deferred = true }; try Green.sleep(10) }
        try Green.sleep(0)
        XCTAssertTrue(g.isStarted)
        try g.kill()
        XCTAssertTrue(deferred)
        XCTAssertTrue(g.isReady)
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testKillBeforeStartNeverRunsTheBody() throws {
        var ran = false
        let g = spawn { () -> Int in ran = true; return 1 }
        try g.kill()
        XCTAssertTrue(g.isReady)
        XCTAssertFalse(g.isStarted)
        // Its queued start is dropped: yielding does not run it.
        try Green.sleep(0)
        try Green.sleep(0)
        XCTAssertFalse(ran)
        XCTAssertThrowsError(try g.get()) { XCTAssertTrue($0 is GreenletExit, "\($0)") }
    }

    func testKillBeforeStartWithoutBlockingNeverRunsTheBodyEither() throws {
        var ran = false
        let g = spawn { ran = true }
        try g.kill(block: false)
        try g.join()
        XCTAssertFalse(ran)
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testKillingAFinishedGreenletIsANoOp() throws {
        let g = spawn { 9 }
        try g.join()
        try g.kill()
        try g.kill(TestError("late"), block: false)
        XCTAssertTrue(g.isSuccessful)
        XCTAssertEqual(try g.get(), 9)
    }

    func testKillingAFailedGreenletKeepsItsError() throws {
        let g = spawn { () throws -> Int in throw TestError("original") }
        try g.join()
        try g.kill(TestError("late"))
        XCTAssertThrowsError(try g.get()) { XCTAssertEqual($0 as? TestError, TestError("original")) }
    }

    func testKillWithACustomErrorMakesGetThrowIt() throws {
        let g = spawn { () throws -> Int in try Green.sleep(10); return 1 }
        try Green.sleep(0)
        try g.kill(TestError("custom"))
        XCTAssertThrowsError(try g.get()) { XCTAssertEqual($0 as? TestError, TestError("custom")) }
    }

    func testKillBeforeStartWithACustomErrorMakesGetThrowIt() throws {
        let g = spawn { 1 }
        try g.kill(TestError("unstarted"))
        XCTAssertThrowsError(try g.get()) { XCTAssertEqual($0 as? TestError, TestError("unstarted")) }
    }

    func testKillWithoutBlockingReturnsAtOnceThenJoinWaitsForTheEnd() throws {
        var steps: [String] = []
        let g = spawn {
            defer { steps.append("defer") }
            try Green.sleep(10)
        }
        try Green.sleep(0)
        try g.kill(block: false)
        // Nothing ran yet: the kill is only delivered when g runs.
        XCTAssertEqual(steps, [])
        XCTAssertFalse(g.isReady)
        XCTAssertTrue(try g.join(timeout: 10))
        XCTAssertEqual(steps, ["defer"])
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testAGreenletCanCatchTheKillAndReturnAValue() throws {
        let g = spawn { () -> String in
            do {
                try Green.sleep(10)
                return "slept"
            } catch is GreenletExit {
                return "caught"
            } catch {
                return "other: \(error)"
            }
        }
        try Green.sleep(0)
        try g.kill()
        XCTAssertTrue(g.isSuccessful)
        XCTAssertEqual(g.value, "caught")
    }

    func testKillingTheCallingGreenletThrowsAtOnce() throws {
        var after = false
        let g = spawn { () throws -> Int in
            try AnyGreenlet.current.kill(TestError("self"))
            after = true
            return 0
        }
        XCTAssertThrowsError(try g.get()) { XCTAssertEqual($0 as? TestError, TestError("self")) }
        XCTAssertFalse(after)
    }

    func testKillAfterAWakeUpLetsTheWaitReturnAndThrowsAtTheNextBlockingPoint() throws {
        let go = Event()
        var steps: [String] = []
        let g = spawn {
            try go.wait()
            steps.append("woke")
            try Green.sleep(0)
            steps.append("not reached")
        }
        try Green.sleep(0)
        go.set()          // g is now ready to run: its wait returns normally...
        try g.kill()      // ...and the kill waits for the next blocking point.
        XCTAssertEqual(steps, ["woke"])
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testAKilledGreenletThatCatchesAndBlocksAgainCanBeKilledAgain() throws {
        var kills = 0
        let g = spawn {
            for _ in 0..<2 {
                do { try Green.sleep(10) } catch is GreenletExit { kills += 1 }
            }
            try Green.sleep(10)
        }
        try Green.sleep(0)
        for _ in 0..<3 { try g.kill(block: false); try Green.sleep(0) }
        try g.join()
        XCTAssertEqual(kills, 2)
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testKillWithTimeoutReturnsWhenTheGreenletDoesNotEndInTime() throws {
        let release = Event()
        var ended = false
        let g = spawn {
            // Ignores the first kill and keeps waiting.
            do { try release.wait() } catch {}
            do { try release.wait() } catch {}
            ended = true
        }
        try Green.sleep(0)
        try g.kill(block: true, timeout: 0.01)
        XCTAssertFalse(ended)
        XCTAssertFalse(g.isReady)
        release.set()
        try g.join()
        XCTAssertTrue(ended)
    }

    func testKillingAGreenletParkedInAJoinWakesIt() throws {
        let go = Event()
        let inner = spawn { try go.wait() }
        let outer = spawn { try inner.join() }
        try Green.sleep(0)
        try outer.kill()
        XCTAssertTrue(outer.error is GreenletExit)
        XCTAssertFalse(inner.isReady)
        go.set()
        try inner.join()
        XCTAssertTrue(inner.isSuccessful)
    }
}
