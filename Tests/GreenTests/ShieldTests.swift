import Green
import XCTest
import GreenTestSupport

/// `shielded { }`: critical sections that kills and outer timeouts wait for.
final class ShieldTests: VirtualTimeTestCase {
    func testShieldedHoldsAKillUntilTheBlockEndsThenThrowsIt() throws {
        let release = Event()
        var steps: [String] = []
        let g = spawn {
            try shielded {
                steps.append("shield entered")
                try release.wait()
                steps.append("shield body done")
            }
            steps.append("after shield")
        }
        try Green.sleep(0)
        try g.kill(block: false)
        // The kill is held: g stays parked in its shielded wait.
        for _ in 0..<3 { try Green.sleep(0) }
        XCTAssertFalse(g.isReady)
        XCTAssertEqual(steps, ["shield entered"])
        release.set()
        try g.join()
        XCTAssertEqual(steps, ["shield entered", "shield body done"])
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testShieldedReturnsTheBodysValueWhenNothingIsPending() throws {
        let r = try shielded { () throws -> Int in try Green.sleep(0); return 11 }
        XCTAssertEqual(r, 11)
    }

    func testShieldedRethrowsTheBodysOwnError() throws {
        XCTAssertThrowsError(try shielded { () throws -> Int in throw TestError("inside") }) {
            XCTAssertEqual($0 as? TestError, TestError("inside"))
        }
    }

    func testATimeoutStartedInsideAShieldStillFires() throws {
        let never = Event()
        XCTAssertThrowsError(try shielded { try withTimeout(0.01) { try never.wait() } }) {
            XCTAssertTrue($0 is TimeoutError, "\($0)")
        }
    }

    func testATimeoutStartedInsideAShieldFiresInAKilledGreenletToo() throws {
        let never = Event()
        var steps: [String] = []
        let g = spawn {
            try shielded {
                do {
                    try withTimeout(0.01) { () throws -> Void in try never.wait() }
                } catch is TimeoutError {
                    steps.append("inner timeout")
                }
            }
            steps.append("not reached")
        }
        try Green.sleep(0)
        try g.kill()
        XCTAssertEqual(steps, ["inner timeout"])
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testATimeoutStartedOutsideAShieldIsHeldUntilTheBlockEnds() throws {
        let outer = Timeout(0.01)
        outer.start()
        defer { outer.cancel() }
        var finished = false
        XCTAssertThrowsError(try shielded {
            try Green.sleep(0.05)
            finished = true
        }) { XCTAssertTrue(($0 as? TimeoutError)?.isFrom(outer) ?? false, "\($0)") }
        XCTAssertTrue(finished)
    }

    func testKillWithTimeoutGivesUpWhileAShieldHoldsTheKill() throws {
        let release = Event()
        let g = spawn { try shielded { () throws -> Void in try release.wait() } }
        try Green.sleep(0)
        try g.kill(timeout: 0.01)
        XCTAssertFalse(g.isReady)
        release.set()
        try g.join()
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testNestedShieldsHoldTheKillUntilTheOutermostEnds() throws {
        let release = Event()
        var steps: [String] = []
        let g = spawn {
            try shielded {
                try shielded { () throws -> Void in try release.wait() }
                steps.append("inner shield ended")
                try Green.sleep(0)
                steps.append("outer shield body done")
            }
            steps.append("not reached")
        }
        try Green.sleep(0)
        try g.kill(block: false)
        release.set()
        try g.join()
        XCTAssertEqual(steps, ["inner shield ended", "outer shield body done"])
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testATimeoutStartedInsideAShieldFiresWhileAnOuterExpiryIsHeld() throws {
        // The outer timeout expires during the shield and is held; a
        // timeout started inside the shield afterwards must still fire.
        let outer = Timeout(0.01)
        outer.start()
        defer { outer.cancel() }
        let never = Event()
        var innerFired = false
        XCTAssertThrowsError(try shielded {
            try Green.sleep(0.03)
            XCTAssertTrue(outer.expired)
            do {
                try withTimeout(0.01) { () throws -> Void in try never.wait() }
            } catch let e as TimeoutError {
                innerFired = !e.isFrom(outer)
            }
        }) { error in
            // Then the held outer expiry, once the shield ends.
            XCTAssertTrue((error as? TimeoutError)?.isFrom(outer) ?? false, "\(error)")
        }
        XCTAssertTrue(innerFired)
    }
}
