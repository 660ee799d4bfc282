import CPatchProbe
import Glibc
import Green
import GreenPatch
import XCTest

final class PatchTests: GreenTestCase {
    override func tearDown() {
        PatchMode.disable()
        super.tearDown()
    }

    /// Runs `body` in a greenlet while a ticker greenlet counts 10 ms
    /// ticks; returns the ticks seen while `body` ran.
    private func ticksDuring(_ body: @escaping () -> Void) throws -> Int {
        var ticks = 0
        var running = true
        let ticker = spawn(name: "ticker") {
            while running {
                try Green.sleep(0.01)
                ticks += 1
            }
        }
        try Green.sleep(0)   // the ticker starts and parks
        let before = ticks
        let worker = spawn(name: "c-sleeper") { body() }
        try worker.get()
        let during = ticks - before
        running = false
        try ticker.get()
        return during
    }

    func testCSleepBlocksTheHubWithoutPatchMode() throws {
        PatchMode.disable()
        // The C usleep holds the thread: the ticker cannot run meanwhile.
        let ticks = try ticksDuring { _ = patch_probe_usleep(300_000) }
        XCTAssertLessThanOrEqual(ticks, 1)
    }

    func testCSleepCooperatesInPatchMode() throws {
        PatchMode.enable()
        let calls = PatchMode.cooperativeCalls
        let ticks = try ticksDuring {
            _ = patch_probe_usleep(150_000)
            _ = patch_probe_nanosleep_ms(150)
        }
        XCTAssertGreaterThanOrEqual(ticks, 5, "the ticker ran while C slept")
        XCTAssertEqual(PatchMode.cooperativeCalls, calls + 2)
    }

    func testManyGreenletsSleepingInCOverlap() throws {
        PatchMode.enable()
        // 50 greenlets each sleep(1) in C: together about one second, not
        // fifty (the bound is loose on purpose: only overlap matters).
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        let start = Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        let sleepers = (0..<50).map { _ in spawn { XCTAssertEqual(patch_probe_sleep(1), 0) } }
        for s in sleepers { try s.get() }
        clock_gettime(CLOCK_MONOTONIC, &t)
        let elapsed = Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 - start
        XCTAssertLessThan(elapsed, 10, "50 C sleeps of 1 s overlapped")
        XCTAssertGreaterThanOrEqual(elapsed, 0.99)
    }

    func testOutsideGreenletsTheCallsAreLibcs() throws {
        PatchMode.enable()
        let calls = PatchMode.cooperativeCalls
        // The main greenlet, and a plain thread: not spawned greenlets.
        XCTAssertEqual(patch_probe_usleep(1_000), 0)
        XCTAssertEqual(try ThreadPool.shared.run { patch_probe_usleep(1_000) }, 0)
        XCTAssertEqual(PatchMode.cooperativeCalls, calls)
    }

    func testAKillReachesAGreenletSleepingInC() throws {
        PatchMode.enable()
        var result: Int32 = 0
        var errnoSeen: Int32 = 0
        let g = spawn {
            result = patch_probe_usleep(30_000_000)
            errnoSeen = errno
            try Green.sleep(10)   // the re-armed kill is thrown here
        }
        try Green.sleep(0.01)
        try g.kill()
        XCTAssertEqual(result, -1)
        XCTAssertEqual(errnoSeen, EINTR)
        XCTAssertTrue(g.error is GreenletExit, "\(String(describing: g.error))")
    }
}
