import Green
import XCTest
import GreenTestSupport

/// When nothing can ever wake any parked greenlet, the main greenlet's
/// blocking call throws `GreenError.wouldBlockForever` instead of hanging.
final class DeadlockTests: GreenTestCase {
    func testJoiningAGreenletCaughtInAJoinCycleThrowsWouldBlockForever() throws {
        var g2: AnyGreenlet?
        let g1 = spawn(name: "cycle-1") { try g2!.join() }
        let second = spawn(name: "cycle-2") { try g1.join() }
        g2 = second
        XCTAssertThrowsError(try g1.join()) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, let parked) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "join")
            XCTAssertEqual(Set(parked), ["cycle-1 in join", "cycle-2 in join"])
        }
        // g1 and g2 are still parked; nothing else can end them.
        XCTAssertFalse(g1.isReady)
        XCTAssertFalse(second.isReady)
        try g1.kill()
        try second.join()
        XCTAssertTrue(g1.error is GreenletExit)
        // g1's end released g2's join normally.
        XCTAssertTrue(second.isSuccessful)
        g2 = nil
    }

    func testWaitingOnAnEventNobodyCanSetThrowsWouldBlockForever() throws {
        let never = Event()
        XCTAssertThrowsError(try never.wait()) { error in
            guard case GreenError.wouldBlockForever(let waitingOn, let parked) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(waitingOn, "Event.wait")
            XCTAssertEqual(parked, [])
        }
    }

    func testTheReportDescribesTheWait() throws {
        XCTAssertThrowsError(try Event().wait()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("Event.wait"), text)
            XCTAssertTrue(text.contains("nothing can ever wake it"), text)
        }
    }

    func testAWaitWithAnActiveTimerIsNotADeadlock() throws {
        let never = Event()
        XCTAssertThrowsError(try withTimeout(0.01) { () throws -> Void in try never.wait() }) {
            XCTAssertTrue($0 is TimeoutError, "\($0)")
        }
    }

    func testASleepingGreenletIsNotADeadlock() throws {
        let g = spawn { () throws -> Int in try Green.sleep(0.01); return 1 }
        XCTAssertEqual(try g.get(), 1)
    }

    func testTheHubStillWorksAfterADeadlockReport() throws {
        for _ in 0..<3 {
            XCTAssertThrowsError(try Event().wait())
        }
        var n = 0
        let gs = (0..<100).map { _ in spawn { try Green.sleep(0.001); n += 1 } }
        try joinAll(gs)
        XCTAssertEqual(n, 100)
        let e = Event()
        let setter = spawn { try Green.sleep(0); e.set() }
        XCTAssertTrue(try e.wait())
        try setter.join()
    }

    func testAGreenletsOwnDeadlockIsReportedToTheMainGreenletJoiningIt() throws {
        // Only the main greenlet gets the report: the stuck greenlet stays
        // parked, and main's join is what throws.
        let never = Event()
        let g = spawn(name: "stuck") { try never.wait() }
        XCTAssertThrowsError(try g.join()) { error in
            guard case GreenError.wouldBlockForever(_, let parked) = error else {
                return XCTFail("expected wouldBlockForever, got \(error)")
            }
            XCTAssertEqual(parked.count, 1, "\(parked)")
        }
        XCTAssertFalse(g.isReady)
        try g.kill()
        XCTAssertTrue(g.error is GreenletExit)
    }
}
