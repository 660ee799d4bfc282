import CGreenContext
import Glibc
import Green
import XCTest
import GreenTestSupport

/// Compact greenlets (`StackMode.compact`): their stacks share one run
/// stack and live on the heap while parked. (The whole suite also runs
/// with compact as the default mode: `make test-compact`.)
final class CompactModeTests: GreenTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        try XCTSkipUnless(StackMode.compactAvailable, "this build has no compact mode (a sanitizer, Valgrind or ucontext build)")
    }

    func testACompactGreenletRunsAndSaysSo() throws {
        let g = spawn(stackMode: .compact) { AnyGreenlet.current.isCompact }
        XCTAssertTrue(try g.get())
        XCTAssertTrue(g.isCompact)
        let d = spawn(stackMode: .dedicated) { AnyGreenlet.current.isCompact }
        XCTAssertFalse(try d.get())
    }

    func testValuesAndPointersOnTheStackSurviveSwitches() throws {
        // Several compact greenlets interleave; each keeps locals (an
        // array on its stack, a variable behind a pointer) across hundreds
        // of switches, and the pointers keep their addresses.
        let n = 4
        let rounds = 300
        let restoresBefore = Hub.current.compactStats.restores
        var greenlets: [Greenlet<Bool>] = []
        for k in 0..<n {
            greenlets.append(spawn(stackMode: .compact) { () -> Bool in
                var counter = UInt64(k) << 32
                return try withUnsafeMutablePointer(to: &counter) { p -> Bool in
                    let address = UInt(bitPattern: p)
                    return try withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 64) { locals -> Bool in
                        for i in 0..<64 { locals[i] = UInt64(k * 1000 + i) }
                        for r in 0..<rounds {
                            try Green.sleep(0)
                            p.pointee += 1
                            locals[r % 64] &+= 1
                        }
                        var ok = UInt(bitPattern: p) == address && p.pointee == (UInt64(k) << 32) + UInt64(rounds)
                        for i in 0..<64 {
                            let bumps = rounds / 64 + (i < rounds % 64 ? 1 : 0)
                            ok = ok && locals[i] == UInt64(k * 1000 + i + bumps)
                        }
                        return ok
                    }
                }
            })
        }
        for g in greenlets { XCTAssertTrue(try g.get()) }
        XCTAssertGreaterThan(Hub.current.compactStats.restores - restoresBefore, UInt64(n * rounds / 2))
    }

    func testCompactAndDedicatedGreenletsTradeThroughQueuesAndLocks() throws {
        // Two compact greenlets take turns on the run stack while each
        // waits in a queue's and a lock's wait list (nodes that wakers and
        // neighbours write into), beside a dedicated one.
        let requests = Queue<Int>(maxSize: 1)
        let replies = Queue<Int>()
        let lock = Lock()
        var inside = 0
        func worker() throws -> Int {
            var handled = 0
            while true {
                let v = try requests.get()
                if v < 0 { return handled }
                try lock.withLock {
                    inside += 1
                    try Green.sleep(0)   // the other compact worker queues on the lock
                    XCTAssertEqual(inside, 1)
                    inside -= 1
                }
                try replies.put(v * 2)
                handled += 1
            }
        }
        let a = spawn(stackMode: .compact) { try worker() }
        let b = spawn(stackMode: .compact) { try worker() }
        let producer = spawn(stackMode: .dedicated) { () -> Int in
            var sum = 0
            for i in 0..<200 {
                try requests.put(i)
                if i % 2 == 1 {
                    sum += try replies.get()
                    sum += try replies.get()
                }
            }
            try requests.put(-1)
            try requests.put(-1)
            return sum
        }
        XCTAssertEqual(try producer.get(), 199 * 200)
        XCTAssertEqual(try a.get() + b.get(), 200)
    }

    func testASleepingCompactGreenletsTimerSurvivesOtherTimersMoving() throws {
        // libev moves timers in its heap whenever one starts or stops, and
        // writes each moved timer's position into it: a compact sleeper's
        // timer must not be on its stack, where another compact greenlet
        // now runs.
        let sleeper = spawn(stackMode: .compact) { () -> Double in
            let t0 = Hub.current.nowUpdated()
            try Green.sleep(0.05)
            return Hub.current.nowUpdated() - t0
        }
        let churn = spawn(stackMode: .compact) { () -> Int in
            var done = 0
            while !sleeper.isReady && done < 100_000 {
                // A timer started and stopped each time, at deadlines on
                // both sides of the sleeper's.
                _ = try withTimeout(done % 2 == 0 ? 0.01 : 10) { try Green.sleep(0) }
                done += 1
            }
            return done
        }
        XCTAssertGreaterThanOrEqual(try sleeper.get(), 0.049)
        XCTAssertGreaterThan(try churn.get(), 10)
    }

    func testParkedCompactGreenletsHoldOnlyTheBytesTheyUse() throws {
        let event = Event()
        var started = 0
        let greenlets = (0..<200).map { _ in
            spawn(stackMode: .compact) {
                started += 1
                try event.wait()
            }
        }
        while started < greenlets.count { try Green.sleep(0) }
        // One more switch, so that the last to run is saved too.
        let last = spawn(stackMode: .compact) {}
        try last.join()
        var total = 0
        for g in greenlets {
            let saved = g.savedStackBytes
            XCTAssertGreaterThan(saved, 0)
            // A few frames: about 1 KiB in a release build, 5 in a debug one.
            XCTAssertLessThan(saved, 8192, "a greenlet parked on an event holds a few frames")
            total += saved
        }
        XCTAssertLessThan(total / greenlets.count, 8192)
        event.set()
        for g in greenlets { try g.join() }
    }

    func testKillTimeoutAndSocketsReachACompactGreenlet() throws {
        // Parked on a socket read with a timeout (a heap watcher and a
        // heap timer) while other compact greenlets take the run stack:
        // the timeout fires, a read is answered, then a kill ends a sleep.
        let (a, b) = try connectedSocketPair()
        defer { a.close(); b.close() }
        let parkedForKill = Event()
        let timedOut = Event()
        var stop = false
        let noise = spawn(stackMode: .compact) {
            while !stop { try Green.sleep(0) }
        }
        let g = spawn(stackMode: .compact) { () -> String in
            do {
                _ = try a.recv(timeout: 0.05)
                return "no timeout"
            } catch let e as SocketError {
                guard case .timedOut = e.reason else { return "\(e)" }
            }
            timedOut.set()
            let data = try a.recv()
            XCTAssertEqual(String(decoding: data, as: UTF8.self), "ping")
            parkedForKill.set()
            try Green.sleep(3600)   // killed here
            return "not killed"
        }
        try timedOut.wait()
        try b.sendAll("ping")
        try parkedForKill.wait()
        try Green.sleep(0)   // noise runs (it is queued first): g's stack leaves the run stack
        XCTAssertGreaterThan(g.savedStackBytes, 0, "parked, its stack is on the heap")
        try g.kill()
        XCTAssertThrowsError(try g.get()) { XCTAssertTrue($0 is GreenletExit, "\($0)") }
        stop = true
        try noise.join()
    }

    func testAnOverflowInCompactModeIsReported() throws {
        let outcome = try Probe.run("overflow-compact")
        XCTAssertEqual(outcome.reason, .uncaughtSignal, "stdout: \(outcome.stdout)\nstderr: \(outcome.stderr)")
        XCTAssertTrue(outcome.stdout.contains("compact true"), outcome.stdout)
        XCTAssertTrue(outcome.stderr.contains("swift-green: stack overflow in greenlet 'deep-recursion' (compact: "
                                              + "the hub's shared run stack of"), outcome.stderr)
    }

    func testAStackImageBeyondTheReportLimitIsReportedOnce() throws {
        let outcome = try Probe.run("compact-large-image")
        XCTAssertEqual(outcome.status, 0, "stdout: \(outcome.stdout)\nstderr: \(outcome.stderr)")
        XCTAssertTrue(outcome.stdout.contains("compact true; values survived true"), outcome.stdout)
        // deep-parker's image was saved twice (finished greenlets are never
        // saved): still one report.
        let saves = outcome.stdout.components(separatedBy: "saves ").last.flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
        XCTAssertEqual(saves, 2, outcome.stdout)
        let reports = outcome.stderr.components(separatedBy: "compact greenlet deep-parker").count - 1
        XCTAssertEqual(reports, 1, outcome.stderr)
        XCTAssertTrue(outcome.stderr.contains("over the report limit of 4096"), outcome.stderr)
    }
}

