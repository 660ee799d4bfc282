import Green
import Synchronization
import XCTest
import GreenTestSupport

/// A greenlet's error nobody looked at is reported once, when the greenlet
/// object goes away; the hub keeps running.
final class UnhandledErrorTests: GreenTestCase {
    final class Reports: Sendable {
        let entries = Locked<[String]>([])
        var all: [String] { entries.withLock { $0 } }
    }

    private var reports = Reports()

    override func setUp() {
        super.setUp()
        let reports = Reports()
        self.reports = reports
        UnhandledErrorReporter.setHandler { name, error in
            reports.entries.withLock { $0.append("\(name): \(error)") }
        }
    }

    override func tearDown() {
        UnhandledErrorReporter.setHandler(nil)
        super.tearDown()
    }

    func testTheHubSurvivesAGreenletsThrownError() throws {
        var doomed: Greenlet<Int>? = spawn(name: "doomed") { () throws -> Int in
            try Green.sleep(0)
            throw TestError("unhandled")
        }
        try doomed?.join()
        XCTAssertEqual(doomed?.isReady, true)
        // Not yet: somebody may still ask for it.
        XCTAssertEqual(reports.all, [])
        doomed = nil
        XCTAssertEqual(reports.all, ["doomed: TestError(unhandled)"])
        // The hub goes on.
        var ran = 0
        let others = (0..<10).map { i in spawn { () throws -> Int in try Green.sleep(0); ran += 1; return i } }
        try joinAll(others)
        XCTAssertEqual(ran, 10)
        XCTAssertEqual(try others[3].get(), 3)
        XCTAssertEqual(reports.all, ["doomed: TestError(unhandled)"])
    }

    func testAnErrorThatNobodyJoinedIsReportedOnceWhenReleased() throws {
        do {
            let g = spawn(name: "fire-and-forget") { () throws -> Void in throw TestError("x") }
            _ = g
        }
        // The hub holds it until it has run.
        XCTAssertEqual(reports.all, [])
        try Green.sleep(0)
        XCTAssertEqual(reports.all, ["fire-and-forget: TestError(x)"])
    }

    func testAnErrorReadThroughGetIsNotReported() throws {
        var g: Greenlet<Int>? = spawn { () throws -> Int in throw TestError("seen") }
        XCTAssertThrowsError(try g?.get())
        g = nil
        XCTAssertEqual(reports.all, [])
    }

    func testAnErrorReadThroughTheErrorPropertyIsNotReported() throws {
        var g: Greenlet<Int>? = spawn { () throws -> Int in throw TestError("seen") }
        try g?.join()
        XCTAssertNotNil(g?.error)
        g = nil
        XCTAssertEqual(reports.all, [])
    }

    func testAnErrorRethrownByAScopeIsNotReported() throws {
        XCTAssertThrowsError(try withScope { scope in
            scope.spawn { () throws -> Void in throw TestError("scoped") }
        })
        try Green.sleep(0)
        XCTAssertEqual(reports.all, [])
    }

    func testAnErrorRethrownByJoinAllIsNotReported() throws {
        do {
            let g = spawn { () throws -> Void in throw TestError("joined") }
            XCTAssertThrowsError(try joinAll([g], raiseError: true))
        }
        try Green.sleep(0)
        XCTAssertEqual(reports.all, [])
    }

    func testAKilledGreenletIsNotReported() throws {
        do {
            let g = spawn { try Green.sleep(10) }
            try Green.sleep(0)
            try g.kill()
            let unstarted = spawn { }
            try unstarted.kill()
        }
        try Green.sleep(0)
        XCTAssertEqual(reports.all, [])
    }

    func testASuccessfulGreenletIsNotReported() throws {
        do {
            let g = spawn { 1 }
            try g.join()
        }
        XCTAssertEqual(reports.all, [])
    }
}
