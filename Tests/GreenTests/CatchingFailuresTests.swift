import Green
import XCTest
import GreenTestSupport

/// `catchingFailures` and `bestEffort`: a call's own errors are returned
/// (or dropped), an interrupt it received is thrown.
final class CatchingFailuresTests: VirtualTimeTestCase {
    func testTheBodysOwnErrorIsReturnedOrDropped() throws {
        guard case .failure(let error) = try catchingFailures({ () throws -> Int in throw TestError("own") }) else {
            return XCTFail("a failure was expected")
        }
        XCTAssertEqual(error as? TestError, TestError("own"))
        XCTAssertNil(try bestEffort { () throws -> Int in throw TestError("own") })
        XCTAssertEqual(try bestEffort { 7 }, 7)
        guard case .success(8) = try catchingFailures({ 8 }) else { return XCTFail("8 was expected") }
    }

    func testAKillDuringTheBodyIsThrownNotDropped() throws {
        let never = Event()
        let g = spawn { () throws -> String in
            try bestEffort { try never.wait() }
            return "went on as if never killed"
        }
        try letOthersRun()
        XCTAssertTrue(g.isStarted && !g.isReady, "parked in the body")
        try g.kill()
        XCTAssertThrowsError(try g.get()) { XCTAssertTrue($0 is GreenletExit, "\($0)") }
    }

    /// Told apart by how it arrived, not by its type: a kill with an
    /// error of the kind the body itself throws is still a kill.
    func testAKillCarryingAnErrorLikeTheBodysOwnIsStillThrown() throws {
        let never = Event()
        let g = spawn { () throws -> Result<Void, any Error> in
            try catchingFailures { try never.wait() }
        }
        try letOthersRun()
        try g.kill(TestError("own"))
        XCTAssertThrowsError(try g.get()) { XCTAssertEqual($0 as? TestError, TestError("own")) }
    }

    func testAnEnclosingTimeoutIsThrown() throws {
        XCTAssertThrowsError(try withTimeout(1) { try bestEffort { try Green.sleep(3600) } }) {
            XCTAssertTrue($0 is TimeoutError, "\($0)")
        }
    }

    /// An interrupt caught before the call (where it could not be thrown)
    /// can still be rearmed after it: the call keeps what it did not see.
    func testAnInterruptCaughtBeforeTheCallCanStillBeRearmedAfterIt() throws {
        let never = Event()
        let g = spawn { () throws -> String in
            do { try never.wait() } catch {}   // the kill, caught
            try bestEffort { throw TestError("own") }
            Hub.rearmInterrupt()
            try Green.sleep(0)
            return "the kill was lost"
        }
        try letOthersRun()
        try g.kill()
        XCTAssertThrowsError(try g.get()) { XCTAssertTrue($0 is GreenletExit, "\($0)") }
    }
}
