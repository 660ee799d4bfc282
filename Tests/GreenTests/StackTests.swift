import Dispatch
import Foundation
import Glibc
import Green
import Synchronization
import XCTest
import GreenTestSupport

/// Greenlet stacks: what lives on them, their sizes, and the pool they
/// come from.
final class StackTests: GreenTestCase {
    func testValuesOnAGreenletsStackSurviveSwitches() throws {
        let n = 20
        var mismatches: [String] = []
        var addresses: Set<UInt> = []
        let gs = (0..<n).map { i in
            spawn {
                var word = UInt64(i) &* 0x0101_0101_0101_0101
                var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
                    (0, 0, 0, 0, 0, 0, 0, 0)
                try withUnsafeMutablePointer(to: &word) { wp in
                    try withUnsafeMutableBytes(of: &block) { bp in
                        addresses.insert(UInt(bitPattern: wp))
                        for k in 0..<bp.count { bp[k] = UInt8(truncatingIfNeeded: i &* 31 &+ k) }
                        for round in 0..<10 {
                            try Green.sleep(0)
                            wp.pointee &+= 1
                            if wp.pointee != UInt64(i) &* 0x0101_0101_0101_0101 &+ UInt64(round + 1) {
                                mismatches.append("greenlet \(i) round \(round): word")
                            }
                            for k in 0..<bp.count where bp[k] != UInt8(truncatingIfNeeded: i &* 31 &+ k) {
                                mismatches.append("greenlet \(i) round \(round): byte \(k)")
                            }
                        }
                    }
                }
                try withUnsafePointer(to: word) { p in
                    let before = p.pointee
                    try Green.sleep(0.001)
                    if p.pointee != before { mismatches.append("greenlet \(i): read-only value") }
                }
            }
        }
        try joinAll(gs)
        XCTAssertTrue(gs.allSatisfy { $0.isSuccessful })
        XCTAssertEqual(mismatches, [])
        // Each greenlet had its own stack; compact ones (make test-compact)
        // all run at the same addresses of the shared run stack.
        let compact = gs.allSatisfy(\.isCompact)
        XCTAssertEqual(addresses.count, compact ? 1 : n)
    }

    func testTheMainGreenletsStackValuesSurviveSwitches() throws {
        var local = 0x1234_5678
        try withUnsafeMutablePointer(to: &local) { p in
            let gs = (0..<50).map { _ in spawn { try Green.sleep(0) } }
            try joinAll(gs)
            XCTAssertEqual(p.pointee, 0x1234_5678)
            p.pointee += 1
        }
        XCTAssertEqual(local, 0x1234_5679)
    }

    @inline(never)
    private func recurse(_ depth: Int) -> Int {
        var frame: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) =
            (depth, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, depth)
        if depth == 0 { return frame.0 }
        frame.1 = recurse(depth - 1)
        return frame.1 &+ frame.15 &- frame.0 &+ 1
    }

    func testAGreenletWithALargerStackCanRecurseDeeper() throws {
        // Several hundred KiB of frames: more than the default 256 KiB.
        let g = spawn(stackSize: 4 << 20) { self.recurse(3000) }
        XCTAssertEqual(try g.get(), 3000)
    }

    func testASmallStackIsEnoughForAShallowGreenlet() throws {
        let g = spawn(stackSize: 16 * 1024) { () throws -> Int in
            try Green.sleep(0)
            return self.recurse(10)
        }
        XCTAssertEqual(try g.get(), 10)
    }

    func testStackStatsAddUp() throws {
        let go = Event()
        let gs = (0..<10).map { _ in spawn(stackMode: .dedicated) { try go.wait() } }
        try Green.sleep(0)
        let s = Hub.current.stackStats
        XCTAssertEqual(s.total, s.inUse + s.free)
        XCTAssertEqual(s.madviseGuarded + s.mprotectGuarded + s.canaryOnly, s.total)
        XCTAssertGreaterThanOrEqual(s.inUse, 10)
        XCTAssertGreaterThanOrEqual(s.slabs, 1)
        go.set()
        try joinAll(gs)
        let after = Hub.current.stackStats
        XCTAssertEqual(after.inUse, s.inUse - 10)
        XCTAssertEqual(after.total, s.total)
    }

    func testAMillionSpawnJoinCyclesLeaveTheStackPoolFlat() throws {
        try AnalysisTool.skipUnderSanitizers(
            "shadow memory and ASan's quarantine of freed memory grow RSS on their own (LeakSanitizer checks leaks)")
        let hub = Hub.current
        let batch = 1000
        let batches = 1000
        var sum = 0
        func runBatch(_ b: Int) throws {
            // Half of each batch yields once, so that about 500 stacks are
            // in use at the same time.
            let gs = (0..<batch).map { i in
                spawn { () throws -> Int in
                    if i & 1 == 0 { try Green.sleep(0) }
                    return i
                }
            }
            try joinAll(gs)
            for g in gs { sum &+= g.value ?? -1_000_000 }
        }
        let start = hub.stackStats
        // One batch to bring the pool to its working size.
        try runBatch(0)
        let warm = hub.stackStats
        let rssWarm = residentBytes()
        for b in 1..<batches { try runBatch(b) }
        let end = hub.stackStats
        let rssEnd = residentBytes()

        XCTAssertEqual(sum, batches * (batch * (batch - 1) / 2))
        XCTAssertEqual(end.inUse, start.inUse, "stacks still in use after every greenlet finished")
        XCTAssertEqual(end.total, warm.total, "the pool grew after the first batch: \(warm) -> \(end)")
        XCTAssertEqual(end.slabs, warm.slabs)
        XCTAssertLessThanOrEqual(warm.total - start.total, batch + 256)
        XCTAssertEqual(hub.liveGreenlets, 0)
        let growth = rssEnd - rssWarm
        XCTAssertLessThan(growth, 64 << 20, "RSS grew by \(growth >> 20) MiB over \(batch * (batches - 1)) spawn/join cycles")
    }

    /// Minor page faults of the calling thread so far.
    private static func minorFaults() -> Int {
        var usage = rusage()
        // RUSAGE_THREAD (Linux; not exported by the Glibc module).
        getrusage(1, &usage)
        return usage.ru_minflt
    }

    private static func spawnJoinCycles(_ n: Int) throws -> Int {
        var sum = 0
        for i in 0..<n {
            let g = spawn { i }
            sum &+= try g.get()
        }
        return sum
    }

    /// Minor page faults of a burst of `n` greenlets on dedicated stacks,
    /// all parked at once, then woken and joined.
    private static func burstFaults(_ n: Int) throws -> Int {
        let start = minorFaults()
        let go = Event()
        let burst = (0..<n).map { _ in spawn(stackMode: .dedicated) { try go.wait() } }
        try Green.sleep(0)
        go.set()
        try joinAll(burst)
        return minorFaults() - start
    }

    func testAWarmStackLimitKeepsABurstsStacksWarmForTheNext() throws {
        try AnalysisTool.skipUnderSanitizers(
            "a sanitizer's shadow of each stack costs page faults of its own")
        // With the default limit (1,024), the second of two bursts of
        // 3,000 greenlets faults in the pages of the 1,976 stacks that gave
        // theirs back; with a limit of 3,000, none. On new threads, whose
        // hubs make their pools after the limit is set.
        let n = 3000
        func secondBurstFaults(warmStacks: Int?) throws -> Int {
            let result = Locked<Result<Int, any Error>?>(nil)
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                result.withLock {
                    $0 = Result {
                        let previous = Hub.warmStackLimit
                        if let warmStacks { Hub.warmStackLimit = warmStacks }
                        defer { Hub.warmStackLimit = previous }
                        _ = try Self.burstFaults(n)
                        return try Self.burstFaults(n)
                    }
                }
                done.signal()
            }
            thread.start()
            XCTAssertEqual(done.wait(timeout: .now() + 120), .success)
            return try XCTUnwrap(result.withLock { $0 }).get()
        }
        let cold = try secondBurstFaults(warmStacks: nil)
        let warm = try secondBurstFaults(warmStacks: n)
        XCTAssertGreaterThan(cold, n / 2, "\(cold) page faults in a burst of \(n) on 1,024 warm stacks")
        XCTAssertLessThan(warm, n / 10, "\(warm) page faults in a burst of \(n) on \(n) warm stacks")
    }

    func testAfterABurstOfGreenletsReusedStacksStayResident() throws {
        try AnalysisTool.skipUnderSanitizers(
            "a sanitizer's shadow of each stack costs page faults of its own")
        // A stack handed out again right after it was released is still
        // backed by pages: spawn/join in a loop costs no page fault. That
        // must stay true after a burst left more free stacks in the pool
        // than it keeps resident (its idle limit, 1024). On a new thread,
        // so that its hub starts with a fresh pool whatever ran before.
        let cycles = 10_000
        let result = Locked<(before: Int, after: Int, error: String?)?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            do {
                _ = try Self.spawnJoinCycles(100)
                var start = Self.minorFaults()
                _ = try Self.spawnJoinCycles(cycles)
                let before = Self.minorFaults() - start

                let go = Event()
                let burst = (0..<3000).map { _ in spawn { try go.wait() } }
                try Green.sleep(0)
                go.set()
                try joinAll(burst)

                _ = try Self.spawnJoinCycles(100)
                start = Self.minorFaults()
                _ = try Self.spawnJoinCycles(cycles)
                let after = Self.minorFaults() - start
                result.withLock { $0 = (before, after, nil) }
            } catch {
                result.withLock { $0 = (0, 0, "\(error)") }
            }
            done.signal()
        }
        thread.start()
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success)
        guard let r = result.withLock({ $0 }) else { return XCTFail("no result from the thread") }
        XCTAssertNil(r.error)
        XCTAssertLessThan(r.before, cycles / 10, "\(r.before) page faults in \(cycles) spawn/join cycles")
        XCTAssertLessThan(r.after, cycles / 10,
                          "\(r.after) page faults in \(cycles) spawn/join cycles after the burst "
                          + "(\(r.before) before it): the reused stack lost its pages")
    }

    func testAStackThatCannotBeAllocatedFailsTheGreenletWithoutRunningIt() throws {
        // 64 TiB per stack: no slab of those can be mapped.
        let huge = 1 << 46
        var ran = false
        let g = spawn(name: "too-big", stackSize: huge) { ran = true }
        try Green.sleep(0)
        XCTAssertTrue(g.isReady)
        XCTAssertFalse(ran)
        XCTAssertThrowsError(try g.get()) { error in
            guard case GreenError.stackAllocationFailed(let name, let size, let err) = error else {
                return XCTFail("expected stackAllocationFailed, got \(error)")
            }
            XCTAssertEqual(name, "too-big")
            XCTAssertEqual(size, huge)
            XCTAssertNotEqual(err, 0)
        }
        // The hub is fine.
        XCTAssertEqual(try spawn { 5 }.get(), 5)
    }
}
