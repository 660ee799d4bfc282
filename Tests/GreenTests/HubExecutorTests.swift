import Glibc
import Green
import XCTest
import GreenTestSupport

/// The hub as a Swift executor: async jobs on the hub's thread, between
/// greenlets, fairly both ways; crossings without a thread hop; the rule
/// for blocking calls from jobs.
final class HubExecutorTests: GreenTestCase {
    func testATaskPreferringTheHubRunsOnItsThreadInterleavedWithGreenlets() throws {
        let hub = Hub.current
        let hubThread = UInt(pthread_self())
        let order = Locked<[String]>([])
        let threads = Locked<Set<UInt>>([])
        // More steps than the hub's run budget (64 switches a turn): the
        // two interleave at that scale.
        let g = spawn {
            for i in 0..<300 {
                order.withLock { $0.append("g\(i)") }
                try Green.sleep(0)
            }
        }
        let task = Task(executorPreference: hub.executor) {
            for i in 0..<300 {
                threads.withLock { _ = $0.insert(UInt(pthread_self())) }
                order.withLock { $0.append("t\(i)") }
                await Task.yield()
            }
        }
        try withTimeout(10) {
            try awaitAsync { await task.value }
            try g.get()
        }
        XCTAssertEqual(threads.withLock { $0 }, [hubThread], "every job ran on the hub's thread")
        let seen = order.withLock { $0 }
        XCTAssertEqual(seen.filter { $0.hasPrefix("g") }, (0..<300).map { "g\($0)" })
        XCTAssertEqual(seen.filter { $0.hasPrefix("t") }, (0..<300).map { "t\($0)" })
        let firstT = seen.firstIndex(of: "t0")!, lastT = seen.firstIndex(of: "t299")!
        XCTAssertTrue(seen[firstT...lastT].contains { $0.hasPrefix("g") }, "greenlets ran between the task's steps")
        let firstG = seen.firstIndex(of: "g0")!, lastG = seen.firstIndex(of: "g299")!
        XCTAssertTrue(seen[firstG...lastG].contains { $0.hasPrefix("t") }, "the task ran between the greenlet's steps")
    }

    /// A task that only yields cannot starve a greenlet that only yields,
    /// nor the reverse: when either finishes its 2,000 steps, the other has
    /// made progress too (each loop turn runs up to 64 greenlet switches,
    /// then up to 64 jobs).
    func testJobsAndGreenletsDoNotStarveEachOther() throws {
        let hub = Hub.current
        let steps = Locked((task: 0, greenlet: 0))
        let otherAtEnd = Locked((ofTask: -1, ofGreenlet: -1))
        let g = spawn {
            for _ in 0..<2000 {
                steps.withLock { $0.greenlet += 1 }
                try Green.sleep(0)
            }
            let t = steps.withLock { $0.task }
            otherAtEnd.withLock { $0.ofGreenlet = t }
        }
        let task = Task(executorPreference: hub.executor) {
            for _ in 0..<2000 {
                steps.withLock { $0.task += 1 }
                await Task.yield()
            }
            let gr = steps.withLock { $0.greenlet }
            otherAtEnd.withLock { $0.ofTask = gr }
        }
        try withTimeout(20) {
            try awaitAsync { await task.value }
            try g.get()
        }
        let (ofTask, ofGreenlet) = otherAtEnd.withLock { $0 }
        XCTAssertGreaterThan(ofTask, 20, "the greenlet stalled while the task yielded")
        XCTAssertGreaterThan(ofGreenlet, 20, "the task stalled while the greenlet yielded")
        print("hub executor fairness: when the task ended the greenlet had \(ofTask) of 2000 steps; "
              + "when the greenlet ended the task had \(ofGreenlet)")
    }

    /// The documented rule: a blocking green call from an async job throws
    /// at once, naming the rule; the hub goes on.
    func testABlockingCallFromAJobThrowsAtOnceAndTheHubGoesOn() throws {
        let messages = try withTimeout(10) {
            try awaitAsync { () -> [String] in
                var out: [String] = []
                do { try Green.sleep(0.05) } catch { out.append("\(error)") }
                do { try Green.sleep(0) } catch { out.append("\(error)") }
                do { _ = try Green.Event().wait(timeout: 1) } catch { out.append("\(error)") }
                return out
            }
        }
        XCTAssertEqual(messages.count, 3, "\(messages)")
        for m in messages { XCTAssertTrue(m.contains("ran on the hub itself"), m) }
        // Blocking work from async code goes through HubHandle.run.
        let handle = Hub.current.handle
        let slept = try withTimeout(10) {
            try awaitAsync { try await handle.run { try Green.sleep(0.01); return "slept" } }
        }
        XCTAssertEqual(slept, "slept")
    }

    func testAwaitAsyncAndHubRunStayOnTheHubsThread() throws {
        let handle = Hub.current.handle
        let hubThread = UInt(pthread_self())
        let (bodyThread, runThread) = try withTimeout(10) {
            try awaitAsync { () -> (UInt, UInt) in
                let body = UInt(pthread_self())
                let run = try await handle.run { UInt(pthread_self()) }
                return (body, run)
            }
        }
        XCTAssertEqual(bodyThread, hubThread)
        XCTAssertEqual(runThread, hubThread)
    }

    /// Killing the greenlet that waits in awaitAsync cancels the task; a
    /// cancelled task kills the greenlet HubHandle.run started; nothing is
    /// left parked either way (GreenTestCase checks no greenlet is left).
    func testCancellationCrossesBothWays() throws {
        let cancelled = AsyncResult<Bool>()
        let waiter = spawn {
            _ = try awaitAsync { () -> Int in
                do {
                    // Short: a cancelled Task.sleep keeps its timer until
                    // the deadline (see BridgeTests).
                    try await Task.sleep(for: .milliseconds(300))
                } catch is CancellationError {
                    cancelled.set(true)
                }
                return 0
            }
        }
        try Green.sleep(0)
        try waiter.kill(timeout: 5)
        XCTAssertEqual(try cancelled.get(timeout: 5), true, "the kill cancelled the task")

        let handle = Hub.current.handle
        let started = AsyncResult<Bool>()
        let killed = AsyncResult<Bool>()
        let task = Task(executorPreference: Hub.current.executor) {
            _ = try? await handle.run { () -> Int in
                started.set(true)
                do { try Green.sleep(60) } catch is GreenletExit { killed.set(true) }
                return 0
            }
        }
        XCTAssertEqual(try started.get(timeout: 5), true)
        task.cancel()
        XCTAssertEqual(try killed.get(timeout: 5), true, "the task's cancellation killed the greenlet")
        try withTimeout(5) { try awaitAsync { await task.value } }
    }

    actor Tally {
        let hubExecutor: HubExecutor
        var count = 0
        init(on executor: HubExecutor) { hubExecutor = executor }
        nonisolated var unownedExecutor: UnownedSerialExecutor { hubExecutor.asUnownedSerialExecutor() }
        func add() -> (Int, UInt) {
            count += 1
            return (count, UInt(pthread_self()))
        }
    }

    func testAnActorOnTheHubsExecutorRunsOnItsThread() throws {
        let tally = Tally(on: Hub.current.executor)
        let hubThread = UInt(pthread_self())
        // From another thread's task too: its calls hop to the hub.
        let results = try withTimeout(10) {
            try awaitAsync {
                let remote = await Task.detached { await tally.add() }.value
                let local = await tally.add()
                return [remote, local]
            }
        }
        XCTAssertEqual(results.map(\.0), [1, 2])
        XCTAssertEqual(results.map(\.1), [hubThread, hubThread])
    }

    /// A task cancelled before its `HubHandle.run` greenlet started: the
    /// greenlet never runs, and the call throws `GreenletExit` (the
    /// continuation is resumed exactly once, by the kill).
    func testARunCancelledBeforeItsGreenletStartsNeverRuns() throws {
        let handle = Hub.current.handle
        let ran = Locked(false)
        let outcome = try withTimeout(10) {
            try awaitAsync { () async -> String in
                withUnsafeCurrentTask { $0!.cancel() }
                do {
                    try await handle.run { ran.withLock { $0 = true } }
                    return "returned"
                } catch {
                    return "\(type(of: error))"
                }
            }
        }
        XCTAssertEqual(outcome, "GreenletExit")
        XCTAssertFalse(ran.withLock { $0 }, "the body of a greenlet killed before it started never ran")
    }

    /// Many greenlets in awaitAsync at once, dedicated and compact, their
    /// tasks interleaved by `Task.yield()`: each gets its own result (the
    /// task writes it off the greenlet's stack, which a compact greenlet
    /// gives up while parked).
    func testManyGreenletsAwaitAtOnceEachGettingItsOwnResult() throws {
        let modes: [StackMode] = StackMode.compactAvailable ? [.dedicated, .compact] : [.dedicated]
        for mode in modes {
            let greenlets = (0..<300).map { i in
                Greenlet.spawn(stackMode: mode) { () throws -> Int in
                    try awaitAsync { () async -> Int in
                        await Task.yield()
                        return i * 3
                    }
                }
            }
            let results = try withTimeout(20) { try greenlets.map { try $0.get() } }
            XCTAssertEqual(results, (0..<300).map { $0 * 3 }, "\(mode)")
        }
    }

    /// awaitAsync from async code on the hub (a job, not a greenlet) would
    /// block the hub: it throws at once, and the hub goes on.
    func testAwaitAsyncFromAJobThrowsAtOnce() throws {
        let message = try withTimeout(10) {
            try awaitAsync { () -> String in
                do {
                    _ = try awaitAsync { 1 }
                    return "returned"
                } catch {
                    return "\(error)"
                }
            }
        }
        XCTAssertTrue(message.contains("ran on the hub itself"), message)
        XCTAssertEqual(try withTimeout(10) { try awaitAsync { 2 } }, 2)
    }

    /// From a task on Swift's pool, `withTaskExecutorPreference` moves
    /// nonisolated code onto the hub's thread, and off it again after.
    func testTaskExecutorPreferenceMovesCodeOntoTheHub() throws {
        let executor = Hub.current.executor
        let hubThread = UInt(pthread_self())
        let (inside, after) = try withTimeout(10) {
            try awaitAsync {
                await Task.detached { () async -> (UInt, UInt) in
                    let inside = await withTaskExecutorPreference(executor) { UInt(pthread_self()) }
                    return (inside, UInt(pthread_self()))
                }.value
            }
        }
        XCTAssertEqual(inside, hubThread)
        XCTAssertNotEqual(after, hubThread)
    }
}
