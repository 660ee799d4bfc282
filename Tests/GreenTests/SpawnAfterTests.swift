import Green
import XCTest
import GreenTestSupport

/// `spawn(after:)`: a greenlet whose start is delayed.
final class SpawnAfterTests: VirtualTimeTestCase {
    func testSpawnAfterStartsLaterThanAShorterSleep() throws {
        var log: [String] = []
        let late = spawn(after: 0.05) { log.append("late") }
        let early = spawn { try Green.sleep(0.01); log.append("early") }
        try joinAll([late, early])
        XCTAssertEqual(log, ["early", "late"])
    }

    func testSpawnAfterDoesNotStartAtTheNextYield() throws {
        var ran = false
        let g = spawn(after: 0.02) { ran = true }
        for _ in 0..<3 { try Green.sleep(0) }
        XCTAssertFalse(ran)
        XCTAssertFalse(g.isStarted)
        XCTAssertFalse(g.isReady)
        try g.join()
        XCTAssertTrue(ran)
    }

    func testSpawnAfterHasNotStartedWhenAShorterSleepEnds() throws {
        var log: [String] = []
        let g = spawn(after: 0.03) { log.append("delayed") }
        try Green.sleep(0.01)
        log.append("main woke")
        XCTAssertFalse(g.isStarted)
        try g.join()
        XCTAssertEqual(log, ["main woke", "delayed"])
    }

    func testKillingASpawnAfterGreenletBeforeItStartsMeansItNeverRuns() throws {
        var ran = false
        let g = spawn(after: 0.01) { ran = true }
        try g.kill()
        XCTAssertTrue(g.isReady)
        XCTAssertTrue(g.error is GreenletExit)
        // Past its start time: the start timer was withdrawn with the kill.
        try Green.sleep(0.05)
        XCTAssertFalse(ran)
    }

    func testKillingASpawnAfterGreenletLeavesNoTimerBehind() throws {
        let g = spawn(after: 30) { }
        try g.kill()
        // With no timer left, a wait nothing can end is reported at once
        // rather than after 30 s.
        XCTAssertThrowsError(try Event().wait()) { error in
            guard case GreenError.wouldBlockForever = error else { return XCTFail("\(error)") }
        }
    }
}
