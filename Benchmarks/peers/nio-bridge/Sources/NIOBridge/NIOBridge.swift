// NIOBridge: SwiftNIO's crossings between an event loop and Swift
// Concurrency, the analogues of green-bench's bridge figures.
//
//   NIOBridge [--count N] [--runs R] [--json]
//
//   nio_submit_roundtrip_ns        a task on Swift's global pool (Task.detached)
//                                  awaiting `try await loop.submit { i }.get()`:
//                                  across threads both ways (green-bench's
//                                  cross_thread_run_roundtrip_ns)
//   nio_executor_hop_roundtrip_ns  the same task awaiting a method of an actor
//                                  whose executor is the loop (SwiftNIO's
//                                  SelectableEventLoop is a SerialExecutor)
//   nio_executor_yield_ns          Task.yield() in that actor's method. The
//                                  loop is only a SerialExecutor, and
//                                  Task.yield() a nonisolated async function
//                                  (Swift 6.3): each yield leaves the loop for
//                                  the global pool and hops back (two thread
//                                  crossings)
//   nio_task_executor_yield_ns     Task.yield() in a task whose preferred
//                                  executor is the loop through a TaskExecutor
//                                  of ours (LoopTaskExecutor, loop.execute per
//                                  job; SwiftNIO 2.101 has none): stays on the
//                                  loop, like green-bench's hub_executor_yield_ns
//
// The loop is the one of a MultiThreadedEventLoopGroup(numberOfThreads: 1).
// N round trips per run (default 20,000, as green-bench), N yields on the
// actor, 25 N on the task executor (green-bench: 5 N; a run takes ~0.3-0.5 s
// either way); each figure is the median of R runs (default 7), after a
// warm-up run of each.
import Glibc
import NIOCore
import NIOPosix

func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// An actor isolated to the event loop: its jobs are enqueued on the loop
/// (SelectableEventLoop.enqueue) and run on the loop's thread.
actor LoopActor {
    let loop: any EventLoop
    let executor: any SerialExecutor
    /// Actor state each method touches: without it the optimizer drops the
    /// hops to the actor's executor, and nothing would run on the loop.
    var calls = 0

    init(loop: any EventLoop) {
        self.loop = loop
        executor = loop.executor
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    func echo(_ i: Int) -> Int {
        calls += 1
        return i
    }

    /// ns per Task.yield() in a method isolated to the loop. Touching
    /// `calls` makes each iteration hop back to the loop (a probe counted,
    /// for 1,000 yields, 1,001 jobs enqueued on the loop, all from off it).
    func yieldNs(_ n: Int) async -> Double {
        let start = monotonicNs()
        for _ in 0..<n {
            calls += 1
            await Task.yield()
        }
        let ns = Double(monotonicNs() - start) / Double(n)
        loop.preconditionInEventLoop()
        return ns
    }

    func takeCalls() -> Int {
        defer { calls = 0 }
        return calls
    }
}

/// The loop as a TaskExecutor, which SwiftNIO 2.101 does not provide: each
/// job goes through loop.execute (a closure per job) and runs with this
/// executor as its task executor, so that Task.yield() in a task preferring
/// it enqueues here again, on the loop, from the loop.
final class LoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

func submitRoundTripNs(_ loop: any EventLoop, _ n: Int) async -> Double {
    await Task.detached {
        let start = monotonicNs()
        var sum = 0
        for i in 0..<n { sum &+= (try? await loop.submit { i }.get()) ?? 0 }
        precondition(sum == n * (n - 1) / 2)
        return Double(monotonicNs() - start) / Double(n)
    }.value
}

func hopRoundTripNs(_ actor: LoopActor, _ n: Int) async -> Double {
    let ns = await Task.detached {
        let start = monotonicNs()
        var sum = 0
        for i in 0..<n { sum &+= await actor.echo(i) }
        precondition(sum == n * (n - 1) / 2)
        return Double(monotonicNs() - start) / Double(n)
    }.value
    let calls = await actor.takeCalls()
    precondition(calls == n, "the actor ran \(calls) of \(n) calls")
    return ns
}

func yieldNs(_ actor: LoopActor, _ n: Int) async -> Double {
    let ns = await Task.detached { await actor.yieldNs(n) }.value
    _ = await actor.takeCalls()
    return ns
}

func taskExecutorYieldNs(_ executor: LoopTaskExecutor, _ n: Int) async -> Double {
    let loop = executor.loop
    return await Task.detached(executorPreference: executor) {
        loop.preconditionInEventLoop()
        let start = monotonicNs()
        for _ in 0..<n { await Task.yield() }
        let ns = Double(monotonicNs() - start) / Double(n)
        loop.preconditionInEventLoop()
        return ns
    }.value
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func format(_ v: Double) -> String {
    if v >= 1000 || v == v.rounded() { return String(Int64(v.rounded())) }
    return String(Double(Int(v * 100)) / 100)
}

func usage(_ message: String, status: Int32 = 2) -> Never {
    let text = "NIOBridge: \(message)\nusage: NIOBridge [--count N] [--runs R] [--json]\n"
    _ = text.withCString { write(status == 0 ? 1 : 2, $0, strlen($0)) }
    exit(status)
}

@main
struct NIOBridge {
    static func main() async throws {
        var count = 20_000
        var runs = 7
        var json = false
        var args = CommandLine.arguments.dropFirst()
        while let arg = args.popFirst() {
            switch arg {
            case "--count", "--runs":
                guard let v = args.popFirst().flatMap({ Int($0) }), v > 0 else { usage("\(arg) needs a positive number") }
                if arg == "--count" { count = v } else { runs = v }
            case "--json": json = true
            case "-h", "--help": usage("SwiftNIO's event loop beside Swift Concurrency, ns per crossing", status: 0)
            default: usage("unknown argument: \(arg)")
            }
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let actor = LoopActor(loop: loop)
        let taskExecutor = LoopTaskExecutor(loop: loop)
        let figures: [(key: String, what: String, measure: () async -> Double)] = [
            ("nio_submit_roundtrip_ns",
             "try await loop.submit { i }.get() from a task on Swift's global executor: across threads both ways",
             { await submitRoundTripNs(loop, count) }),
            ("nio_executor_hop_roundtrip_ns",
             "await actor.echo(i) from a task on Swift's global executor, the actor's executor the loop",
             { await hopRoundTripNs(actor, count) }),
            ("nio_executor_yield_ns",
             "Task.yield() in a method of that actor (leaves the loop for the global pool and hops back)",
             { await yieldNs(actor, count) }),
            ("nio_task_executor_yield_ns",
             "Task.yield() in a task preferring the loop through a TaskExecutor of ours (loop.execute per job)",
             { await taskExecutorYieldNs(taskExecutor, count * 25) }),
        ]
        // Warm-up: each measurement once, shorter.
        _ = await submitRoundTripNs(loop, max(1, count / 10))
        _ = await hopRoundTripNs(actor, max(1, count / 10))
        _ = await yieldNs(actor, max(1, count / 10))
        _ = await taskExecutorYieldNs(taskExecutor, max(1, count * 2))
        var results: [(String, Double, String)] = []
        for f in figures {
            var xs: [Double] = []
            for _ in 0..<runs { xs.append(await f.measure()) }
            results.append((f.key, median(xs), f.what))
        }
        try await group.shutdownGracefully()

        if json {
            let body = results.map { "\"\($0.0)\": \(format($0.1))" }.joined(separator: ", ")
            print("{\(body), \"runs\": \(runs), \"count\": \(count), \"executor\": \"\(type(of: loop.executor))\"}")
        } else {
            print("SwiftNIO bridge figures (median of \(runs) runs, \(count) round trips; loop executor \(type(of: loop.executor)))")
            for (key, value, what) in results {
                let k = key.padding(32)
                let v = format(value).padding(10)
                print("  \(k)\(v)\(what)")
            }
        }
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
