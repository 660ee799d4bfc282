import CoreMetrics
import Glibc
import Green
import MetricsTestKit
import XCTest
import GreenTestSupport

/// `GreenMetrics` publishes each hub's figures through the factory it is
/// given (here MetricsTestKit's, no bootstrap), with the hub's id as the
/// `hub` dimension.
final class MetricsTests: GreenTestCase {
    private typealias Name = GreenMetrics.Name
    private var test = TestMetrics()
    private var metrics = GreenMetrics(factory: NOOPMetricsHandler.instance)
    private var here: [(String, String)] = []

    override func setUp() {
        super.setUp()
        test = TestMetrics()
        metrics = GreenMetrics(factory: test)
        here = [("hub", "\(Hub.current.id)")]
    }

    override func tearDown() {
        // XCTest keeps every test case until the process ends: let go of
        // this test's GreenMetrics now, so that a weak reference formed to
        // it (start(interval:)) does not leave its side table to
        // LeakSanitizer's exit scan, which cannot follow the refcount
        // word's packed pointer to it.
        metrics = GreenMetrics(factory: NOOPMetricsHandler.instance)
        super.tearDown()
    }

    private func gauge(_ name: String, _ dimensions: [(String, String)]? = nil) throws -> Int {
        Int(try XCTUnwrap(test.expectGauge(name, dimensions ?? here).lastValue))
    }

    private func counter(_ name: String, _ dimensions: [(String, String)]? = nil) throws -> Int64 {
        try test.expectCounter(name, dimensions ?? here).totalValue
    }

    func testParkedGreenletsAreCountedSpawnedAliveAndParkedAndDropOutWhenTheyFinish() throws {
        metrics.updateCurrentHub()
        let spawned = try counter(Name.greenletsSpawned)
        let inUse = try gauge(Name.stacksInUse)
        XCTAssertEqual(try gauge(Name.greenletsAlive), 0)
        XCTAssertEqual(try gauge(Name.greenletsParked), 0)

        let go = Event()
        let count = 12
        let parked = (0..<count).map { _ in spawn(stackMode: .dedicated) { try go.wait() } }
        try letOthersRun()   // each runs, in order, and parks on the event
        metrics.updateCurrentHub()
        XCTAssertEqual(try counter(Name.greenletsSpawned), spawned + Int64(count))
        XCTAssertEqual(try gauge(Name.greenletsAlive), count)
        XCTAssertEqual(try gauge(Name.greenletsParked), count)
        XCTAssertEqual(try gauge(Name.stacksInUse), inUse + count)
        let pooled = try gauge(Name.stacksPooled)

        go.set()
        try joinAll(parked)
        metrics.updateCurrentHub()
        XCTAssertEqual(try counter(Name.greenletsSpawned), spawned + Int64(count), "a counter, not a gauge")
        XCTAssertEqual(try gauge(Name.greenletsAlive), 0)
        XCTAssertEqual(try gauge(Name.greenletsParked), 0)
        XCTAssertEqual(try gauge(Name.stacksInUse), inUse)
        XCTAssertEqual(try gauge(Name.stacksPooled), pooled + count, "their stacks went back to the pool")
    }

    func testAGreenletWaitingOnASocketIsAWatchedFd() throws {
        let (a, b) = try connectedSocketPair()
        defer { a.close(); b.close() }
        metrics.updateCurrentHub()
        let before = try gauge(Name.fdsWatched)
        let reader = spawn { try a.recv() }
        try letOthersRun()   // it parks waiting for a to be readable
        metrics.updateCurrentHub()
        XCTAssertEqual(try gauge(Name.fdsWatched), before + 1)
        XCTAssertEqual(try gauge(Name.greenletsParked), 1)
        try b.sendAll("x")
        XCTAssertEqual(try reader.get(), Array("x".utf8))
        metrics.updateCurrentHub()
        XCTAssertEqual(try gauge(Name.fdsWatched), before)
    }

    func testASelectOverThreeFdsWatchesThree() throws {
        let pairs = try (0..<3).map { _ in try connectedSocketPair() }
        defer { for (a, b) in pairs { a.close(); b.close() } }
        let selecting = spawn { try select(readable: pairs.map { $0.0.fd }) }
        try letOthersRun()
        metrics.updateCurrentHub()
        XCTAssertEqual(try gauge(Name.fdsWatched), 3)
        try pairs[1].1.sendAll("x")
        XCTAssertEqual(try selecting.get().readable, [pairs[1].0.fd])
        metrics.updateCurrentHub()
        XCTAssertEqual(try gauge(Name.fdsWatched), 0)
    }

    func testACompactGreenletsParkedImageIsCountedUntilItFinishes() throws {
        guard StackMode.compactAvailable else { throw XCTSkip("no compact greenlets in this build") }
        metrics.updateCurrentHub()
        let before = try gauge(Name.compactImageBytes)
        let go = Event()
        let parked = spawn(stackMode: .compact) { try go.wait() }
        // Another compact greenlet takes the run stack: the parked one's
        // image goes to the heap.
        try spawn(stackMode: .compact) {}.join()
        metrics.updateCurrentHub()
        XCTAssertGreaterThan(try gauge(Name.compactImageBytes), before)
        go.set()
        _ = try parked.get()
        metrics.updateCurrentHub()
        XCTAssertEqual(try gauge(Name.compactImageBytes), before)
    }

    func testABlockedHubIsAnIncident() throws {
        HubMonitor.setPrinting(false)
        HubMonitor.threshold = 0.05
        defer {
            HubMonitor.threshold = 0.1
            HubMonitor.setPrinting(true)
        }
        metrics.updateCurrentHub()
        let incidents = try counter(Name.hubIncidents)
        let reports = HubMonitor.reportCount
        // The main greenlet holds the thread while a greenlet waits here.
        let waiting = spawn { try Green.sleep(0.3) }
        var request = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        var left = timespec()
        while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
        try waiting.join()
        // The watchdog reports on its own thread.
        try waitUntil(timeout: 5, "the watchdog's report") { HubMonitor.reportCount > reports }
        XCTAssertEqual(HubMonitor.reportCount, reports + 1)
        metrics.updateCurrentHub()
        XCTAssertEqual(try counter(Name.hubIncidents), incidents + 1)
    }

    func testUpdateReadsEveryHubOnItsOwnThreadAndForgetsHubsThatAreGone() throws {
        let gate = AsyncResult<Bool>()
        let ready = AsyncResult<Int>()
        // A joinable thread with a hub of its own: once joined, its hub is
        // gone (a thread's hub goes with its thread-local storage).
        let peer = try OSThread.create(detached: false) {
            let waiting = (0..<3).map { _ in spawn { _ = try gate.get() } }
            try? Green.sleep(0)   // they park
            _ = ready.set(Hub.current.id)
            _ = try? joinAll(waiting)
        }.get()
        let peerID = try ready.get(timeout: 10)
        let there = [("hub", "\(peerID)")]
        try metrics.update()
        XCTAssertEqual(try gauge(Name.greenletsAlive, there), 3)
        XCTAssertEqual(try gauge(Name.greenletsParked, there), 3)
        XCTAssertEqual(try gauge(Name.greenletsAlive), 0, "this hub is recorded too")
        _ = gate.set(true)
        XCTAssertEqual(pthread_join(peer, nil), 0)
        try metrics.update()
        XCTAssertThrowsError(try test.expectGauge(Name.greenletsAlive, there), "the peer's metrics were destroyed")
        XCTAssertNoThrow(try test.expectGauge(Name.greenletsAlive, here))
    }

    func testStartRecordsFromATimerThatDoesNotKeepTheHubAlive() throws {
        metrics.start(interval: 0.01)
        defer { metrics.stop() }
        let go = Event()
        let parked = (0..<3).map { _ in spawn { try go.wait() } }
        // Timers fire in order of expiry: the reporting one (10 ms) before
        // this sleep's (50 ms).
        try Green.sleep(0.05)
        XCTAssertEqual(try gauge(Name.greenletsParked), 3)
        go.set()
        try joinAll(parked)
        // Nothing else can wake this wait: the reporting timer must not
        // hide that.
        XCTAssertThrowsError(try Event().wait()) { error in
            guard case GreenError.wouldBlockForever = error else { return XCTFail("\(error)") }
        }
    }
}
