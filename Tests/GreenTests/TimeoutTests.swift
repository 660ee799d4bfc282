import Green
import XCTest
import GreenTestSupport

/// `Timeout` and `withTimeout`, nested ones included.
final class TimeoutTests: VirtualTimeTestCase {
    func testWithTimeoutThrowsTimeoutErrorWhenTheBodyOverruns() throws {
        XCTAssertThrowsError(try withTimeout(0.01) { try Green.sleep(5) }) { error in
            guard let e = error as? TimeoutError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.seconds, 0.01)
        }
    }

    func testWithTimeoutReturnsTheBodysValueInTime() throws {
        XCTAssertEqual(try withTimeout(10) { () throws -> Int in try Green.sleep(0); return 5 }, 5)
        // The cancelled deadline does not fire later.
        try Green.sleep(0.02)
    }

    func testWithTimeoutOtherwiseReturnsTheFallback() throws {
        let r = try withTimeout(0.01, otherwise: { "fallback" }) { () throws -> String in
            try Green.sleep(5)
            return "body"
        }
        XCTAssertEqual(r, "fallback")
    }

    func testNestedInnerTimeoutFiringFirstReturnsTheFallbackAndTheOuterContinues() throws {
        var steps: [String] = []
        let result = try withTimeout(10) { () throws -> String in
            let inner = try withTimeout(0.01, otherwise: { "fallback" }) { () throws -> String in
                try Green.sleep(10)
                return "inner body"
            }
            steps.append("inner returned \(inner)")
            // The outer deadline is still running and not fired: blocking
            // again works.
            try Green.sleep(0.001)
            steps.append("outer continued")
            return inner
        }
        XCTAssertEqual(result, "fallback")
        XCTAssertEqual(steps, ["inner returned fallback", "outer continued"])
    }

    func testNestedOuterTimeoutFiringFirstPropagatesThroughTheInner() throws {
        let outer = Timeout(0.01)
        let inner = Timeout(10)
        outer.start()
        defer { outer.cancel() }
        inner.start()
        defer { inner.cancel() }
        XCTAssertThrowsError(try Green.sleep(10)) { error in
            guard let e = error as? TimeoutError else { return XCTFail("\(error)") }
            XCTAssertTrue(e.isFrom(outer))
            XCTAssertFalse(e.isFrom(inner))
        }
        XCTAssertTrue(outer.expired)
        XCTAssertFalse(inner.expired)
    }

    func testAnOuterTimeoutPassesThroughAnInnerWithTimeoutOtherwise() throws {
        let outer = Timeout(0.01)
        outer.start()
        defer { outer.cancel() }
        var fallbackCalled = false
        XCTAssertThrowsError(try withTimeout(10, otherwise: { fallbackCalled = true; return 0 }) { () throws -> Int in
            try Green.sleep(10)
            return 1
        }) { error in
            XCTAssertTrue((error as? TimeoutError)?.isFrom(outer) ?? false, "\(error)")
        }
        XCTAssertFalse(fallbackCalled)
    }

    func testAnOuterWithTimeoutFiringFirstIsNotMistakenForTheInner() throws {
        var innerFallback = false
        var outerFallback = false
        let r = try withTimeout(0.01, otherwise: { outerFallback = true; return "outer" }) { () throws -> String in
            try withTimeout(10, otherwise: { innerFallback = true; return "inner" }) { () throws -> String in
                try Green.sleep(10)
                return "body"
            }
        }
        XCTAssertEqual(r, "outer")
        XCTAssertTrue(outerFallback)
        XCTAssertFalse(innerFallback)
    }

    func testACancelledTimeoutNeverFires() throws {
        let t = Timeout(0.01)
        t.start()
        XCTAssertTrue(t.isPending)
        t.cancel()
        XCTAssertFalse(t.isPending)
        // Well past its deadline: nothing is thrown.
        try Green.sleep(0.05)
        XCTAssertFalse(t.expired)
    }

    func testATimeoutThatExpiresWhileTheGreenletIsNotBlockedIsDeliveredAtTheNextBlockingPoint() throws {
        let t = Timeout(0)
        t.start()
        defer { t.cancel() }
        // Already due, but only the hub can fire it, and the hub runs only
        // when this greenlet blocks.
        var work = 0
        for i in 0..<10_000 { work &+= i }
        XCTAssertEqual(work, 49_995_000)
        XCTAssertFalse(t.expired)
        XCTAssertThrowsError(try Green.sleep(10)) { error in
            XCTAssertTrue((error as? TimeoutError)?.isFrom(t) ?? false, "\(error)")
        }
        XCTAssertTrue(t.expired)
    }

    func testATimeoutWithACustomErrorThrowsIt() throws {
        let t = Timeout(0.01, error: TestError("custom"))
        t.start()
        defer { t.cancel() }
        XCTAssertThrowsError(try Green.sleep(10)) { XCTAssertEqual($0 as? TestError, TestError("custom")) }
        XCTAssertTrue(t.expired)
    }

    func testATimeoutAppliesOnlyToTheGreenletThatStartedIt() throws {
        let never = Event()
        let g = spawn {
            let t = Timeout(0.01)
            t.start()
            defer { t.cancel() }
            try never.wait()
        }
        // The main greenlet is blocked in the join the whole time; only g
        // times out.
        try g.join()
        XCTAssertTrue(g.error is TimeoutError)
    }

    func testATimeoutCanBeRestartedAfterItFired() throws {
        let t = Timeout(0.01)
        for _ in 0..<2 {
            t.start()
            XCTAssertFalse(t.expired)
            XCTAssertThrowsError(try Green.sleep(10)) { XCTAssertTrue(($0 as? TimeoutError)?.isFrom(t) ?? false) }
            XCTAssertTrue(t.expired)
            t.cancel()
        }
    }

    func testATimeoutOfAJoinDoesNotDisturbTheJoinedGreenlet() throws {
        let go = Event()
        let g = spawn { () throws -> Int in try go.wait(); return 3 }
        XCTAssertThrowsError(try withTimeout(0.01) { try g.join() }) { XCTAssertTrue($0 is TimeoutError) }
        XCTAssertFalse(g.isReady)
        go.set()
        XCTAssertEqual(try g.get(), 3)
    }
}

/// What needs the real clock: a greenlet that never waits sees virtual
/// time stand still (it moves only by jumps and waits), so a timeout
/// interrupting a busy loop is tested on real time.
final class TimeoutRealClockTests: GreenTestCase {
    func testATimeoutInterruptsALoopOfYields() throws {
        let t = Timeout(0.001)
        t.start()
        defer { t.cancel() }
        var yields = 0
        var caught: (any Error)?
        // sleep(0) with nothing else ready does not enter the hub, but the
        // hub polls timers at least once per run budget of switches.
        while yields < 1_000_000 {
            do {
                try Green.sleep(0)
            } catch {
                caught = error
                break
            }
            yields += 1
        }
        XCTAssertTrue((caught as? TimeoutError)?.isFrom(t) ?? false, "after \(yields) yields: \(String(describing: caught))")
    }
}
