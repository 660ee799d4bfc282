import Glibc
import Green
import XCTest
import GreenTestSupport

/// The order in which the hub runs greenlets.
final class SchedulingTests: GreenTestCase {
    func testGreenletsStartInSpawnOrder() throws {
        var order: [Int] = []
        let gs = (0..<200).map { i in spawn { order.append(i) } }
        try joinAll(gs)
        XCTAssertEqual(order, Array(0..<200))
    }

    /// The run queue is FIFO and a yield goes to its tail: N greenlets that
    /// each log their index and yield, k times, interleave perfectly.
    private func checkRoundRobin(greenlets n: Int, rounds k: Int) throws {
        var log: [Int] = []
        log.reserveCapacity(n * k)
        let gs = (0..<n).map { i in
            spawn {
                for _ in 0..<k {
                    log.append(i)
                    try Green.sleep(0)
                }
            }
        }
        try joinAll(gs)
        let expected = (0..<k).flatMap { _ in 0..<n }
        XCTAssertEqual(log.count, expected.count)
        if let i = log.indices.first(where: { log[$0] != expected[$0] }) {
            XCTFail("round-robin broken at entry \(i): got \(log[i]), expected \(expected[i])")
        }
    }

    func testSleepZeroIsRoundRobinFair() throws {
        try checkRoundRobin(greenlets: 10, rounds: 5)
    }

    func testSleepZeroStaysRoundRobinAcrossHubPolls() throws {
        // More greenlets than the hub's run budget (64 switches between
        // polls): the hub's polls must not reorder the queue.
        try checkRoundRobin(greenlets: 150, rounds: 20)
    }

    func testAYieldingGreenletLetsEveryReadyGreenletRunOnce() throws {
        var log: [String] = []
        let a = spawn {
            log.append("a1")
            try Green.sleep(0)
            log.append("a2")
        }
        let b = spawn { log.append("b") }
        let c = spawn { log.append("c") }
        try joinAll([a, b, c])
        XCTAssertEqual(log, ["a1", "b", "c", "a2"])
    }

    func testYieldIsTheSameAsSleepZero() throws {
        var log: [String] = []
        let a = spawn { log.append("a1"); try Green.yield(); log.append("a2") }
        let b = spawn { log.append("b1"); try Green.sleep(0); log.append("b2") }
        try joinAll([a, b])
        XCTAssertEqual(log, ["a1", "b1", "a2", "b2"])
    }

    func testSleepersWakeInDeadlineOrderNotSleepOrder() throws {
        var log: [Int] = []
        let gs = [0.03, 0.01, 0.02].enumerated().map { i, d in
            spawn { try Green.sleep(d); log.append(i) }
        }
        try joinAll(gs)
        XCTAssertEqual(log, [1, 2, 0])
    }

    func testSleepUntilAPastDeadlineReturnsAfterTheReadyGreenletsRan() throws {
        var log: [String] = []
        let other = spawn { log.append("other") }
        let hub = Hub.current
        hub.updateNow()
        try Green.sleep(until: hub.now - 1)
        log.append("main")
        try other.join()
        XCTAssertEqual(log, ["other", "main"])
    }

    func testTenThousandSleepersWakeInDeadlineOrder() throws {
        // Under a sanitizer (slowed, and beside another suite in CI) the
        // thread can be descheduled between libev's two clock readings,
        // so its offset between them can be off by milliseconds: seen as
        // 65 swaps of deadlines 3 ms apart under ThreadSanitizer. The
        // other runs of the suite check the order.
        try AnalysisTool.skipUnderSanitizers("libev's re-measured clock offset can be milliseconds off on a thread this slowed")
        let n = 10_000
        var rng = SplitMix64(seed: 0x6772_656e_6c65_7421)
        // Offsets in [0, 0.2) s, in whole milliseconds: `sleep(until:)` is
        // on the wall clock while libev keeps timers on the monotonic one,
        // and the offset between the two is re-measured as the loop runs,
        // so deadlines a few microseconds apart may legitimately swap on a
        // loaded machine.
        let offsets = (0..<n).map { _ in Double(rng.next() % 200) / 1_000 }
        let hub = Hub.current
        hub.updateNow()
        // Every greenlet must have started its sleep before the earliest
        // deadline passes, or it would be woken late for a reason that has
        // nothing to do with the order of the timers: start the deadlines
        // a margin into the future. (Starting 10,000 sleeps takes about
        // 50 ms in a debug build; with no margin about 150 of them would
        // start after their own deadline.)
        let base = hub.now + 0.3
        var woke: [Double] = []
        woke.reserveCapacity(n)
        var lastSleepStarted = 0.0
        let gs = offsets.map { d in
            spawn {
                let deadline = base + d
                // The real clock, not the loop's: refreshing the loop's
                // would re-measure the clocks' offset (see above).
                lastSleepStarted = wallClockNow()
                try Green.sleep(until: deadline)
                woke.append(deadline)
            }
        }
        try joinAll(gs)
        XCTAssertEqual(woke.count, n)
        guard lastSleepStarted < base + (offsets.min() ?? 0) else {
            throw XCTSkip("starting 10,000 sleeps took longer than the margin; the order cannot be judged")
        }
        var inversions = 0
        var firstInversion: (Int, Double, Double)?
        for i in 1..<woke.count where woke[i] < woke[i - 1] {
            inversions += 1
            if firstInversion == nil { firstInversion = (i, woke[i - 1], woke[i]) }
        }
        XCTAssertEqual(inversions, 0, "first: \(String(describing: firstInversion))")
    }
}

/// Seconds since the epoch, read from the system clock now.
private func wallClockNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
