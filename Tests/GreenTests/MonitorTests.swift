import Glibc
import Green
import XCTest
import GreenTestSupport

final class MonitorTests: GreenTestCase {
    override func setUp() {
        super.setUp()
        HubMonitor.setPrinting(false)
    }

    override func tearDown() {
        HubMonitor.threshold = 0.1
        HubMonitor.setPrinting(true)
        super.tearDown()
    }

    /// The watchdog finishes a report on its own thread: wait (2 s at
    /// most) until `count` reports are in.
    private func waitForReports(_ count: UInt64) {
        for _ in 0..<200 where HubMonitor.reportCount < count { usleep(10_000) }
    }

    /// Spins on the CPU for `seconds`, never switching.
    private func spin(_ seconds: Double) {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        let end = Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 + seconds
        var x: UInt64 = 1
        repeat {
            for _ in 0..<1000 { x = x &* 6364136223846793005 &+ 1 }
            clock_gettime(CLOCK_MONOTONIC, &t)
        } while Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 < end
        XCTAssertNotEqual(x, 0)
    }

    func testASpinningGreenletIsReportedOnceByName() throws {
        HubMonitor.threshold = 0.1
        let before = HubMonitor.reportCount
        let g = spawn(name: "spinner") { self.spin(0.4) }
        try g.get()
        waitForReports(before + 1)
        XCTAssertEqual(HubMonitor.reportCount, before + 1, "one incident, one report")
        let report = HubMonitor.lastReport
        XCTAssertTrue(report.contains("greenlet spinner has held its hub"), report)
        XCTAssertTrue(report.contains("threshold 100 ms"), report)
        // The backtrace was taken on the blocked thread and trimmed to the
        // user's code: it names the spin, and lines of this file (the
        // interrupted instruction itself may have none: loop bookkeeping
        // the compiler made).
        let lines = report.split(separator: "\n")
        let user = lines.drop { !$0.hasPrefix("  user code: ") }
        XCTAssertTrue(user.first?.contains("MonitorTests.spin(") ?? false, report)
        XCTAssertTrue(user.contains { $0.contains("MonitorTests.swift:") }, report)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  now in ") }, report)
    }

    func testGreenletsThatSwitchAndAnIdleHubAreNotReported() throws {
        // A threshold well above any pause the OS may impose on a busy
        // shared machine: only the absence of switches may trigger it.
        HubMonitor.threshold = 0.5
        let before = HubMonitor.reportCount
        // Busy for 0.3 s in all, but switching every few milliseconds.
        let workers = (0..<3).map { _ in
            spawn {
                for _ in 0..<30 {
                    self.spin(0.003)
                    try Green.sleep(0)
                }
            }
        }
        for w in workers { try w.get() }
        // Idle: the hub waits 0.7 s in its loop, a greenlet parked.
        let parked = spawn { try Green.sleep(0.7) }
        try parked.get()
        XCTAssertEqual(HubMonitor.reportCount, before)
    }

    func testAThreadBlockedOutsideAGreenletIsReportedAsTheMainGreenlet() throws {
        HubMonitor.threshold = 0.05
        let before = HubMonitor.reportCount
        // A greenlet waits on this hub: blocking the thread stalls it.
        let waiting = spawn { try Green.sleep(0.3) }
        defer { _ = try? waiting.get() }
        // The main greenlet blocks its hub's thread in C for 0.2 s (the
        // report's signal cuts one nanosleep short: sleep the rest).
        // One nanosleep: the monitor must not interrupt it.
        var left = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        XCTAssertEqual(nanosleep(&left, nil), 0, "the monitor cut a system call short")
        waitForReports(before + 1)
        XCTAssertEqual(HubMonitor.reportCount, before + 1)
        XCTAssertTrue(HubMonitor.lastReport.contains("waits in the kernel, in system call"), HubMonitor.lastReport)
        XCTAssertTrue(HubMonitor.lastReport.contains("greenlet main has held its hub"), HubMonitor.lastReport)
    }

    func testAThreadWithoutGreenletsMayBlock() throws {
        HubMonitor.threshold = 0.05
        let before = HubMonitor.reportCount
        // This hub has no spawned greenlet alive: nobody waits on it.
        XCTAssertEqual(Hub.current.liveGreenlets, 0)
        spin(0.2)
        XCTAssertEqual(HubMonitor.reportCount, before)
    }

    func testTheMonitorCanBeTurnedOff() throws {
        HubMonitor.threshold = 0
        let before = HubMonitor.reportCount
        spin(0.2)
        XCTAssertEqual(HubMonitor.reportCount, before)
    }
}
