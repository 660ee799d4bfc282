// The main thread's hub as Swift's main and default executors: one thread
// for greenlets, `@MainActor` code and every unstructured task, as in
// gevent or Node. Opt-in, on the custom main and global executors that the
// toolchain ships as SPI (the "Custom Main and Global Executors" pitch,
// `@_spi(ExperimentalCustomExecutors)` in `_Concurrency`; Swift 6.3).
//
// What the factory installs:
//
//   * main executor (`MainActor.executor`): `MainHubExecutor`, which feeds
//     the main thread's hub. Main-actor jobs join the hub's one FIFO of jobs
//     and run on its thread between greenlets, like any job of the hub's
//     executor (see HubExecutor.swift). `run()`, which the async entry
//     point calls once the first part of `main` has run, parks the main
//     greenlet for good: the hub's loop runs from then on. An async `main`
//     ends the process with `exit` when it returns, from inside a job, as
//     on any executor.
//   * default executor (`Task.defaultExecutor`): the main hub's own
//     `HubExecutor`. `Task {}`, `Task.detached {}`, nonisolated async
//     functions and `globalConcurrentExecutor` all run on the main thread,
//     and `Task.sleep` lands on a libev timer (DelayedJobs.swift): the
//     runtime sends every delayed job to the default executor, so only an
//     executor of ours as the default puts sleeps on the hub's loop. The
//     price: nothing async runs in parallel any more unless asked to. A
//     task with `Task(executorPreference: PlatformExecutorFactory
//     .defaultExecutor)` still runs on Swift's thread pool, and other hubs
//     (`HubThread`) keep their own executors.
//   * Dispatch: `DispatchQueue.main` has no one to drain it once the main
//     executor is not Dispatch's; the main hub drains it with libev, as
//     Foundation's run loop does (libdispatch's `_4CF` entry points, found
//     with `dlsym`). Other queues are untouched.
//
// Rules that come with it: a job (main-actor code included) must not block
// (a blocking green call throws `GreenError.blockingCallOnHub`; spawn a
// greenlet, or await `HubHandle.run`); CPU-heavy async code stalls the
// greenlets of the main thread. One gap the check cannot see: the part of
// an async `main` before its first suspension runs on the main greenlet
// (the entry point runs it before `run()`), so a blocking green call there
// parks the main greenlet inside a main-actor job and lets other jobs,
// main-actor ones included, run meanwhile; await something first, or
// spawn. `runUntil` is not offered (the protocol's default, a fatal
// error, stays): the hub's loop has no cheap "after each job" hook to test
// the condition in.
//
// Installing it, on this toolchain (6.3.1, Linux):
//
//   * `typealias DefaultExecutorFactory = GreenExecutorFactory` at the top
//     level of the main module, with an async `main`: the compiler then
//     calls `_createExecutors(factory:)` first thing. 6.3.1 does so only
//     when the custom-executor runtime counts as available, which on Linux
//     takes `-Xfrontend -disable-availability-checking` (without it the
//     alias is silently ignored);
//   * or, with no flag, `GreenExecutorFactory.runMain { ... }` from a
//     synchronous `main`: it installs the executors, runs the closure as a
//     main-actor task, and runs the loop.
//
// Calling `_createExecutors` as the first statement of an async `main`
// instead does not work: the main task has already started on Dispatch's
// main executor, and (tried on 6.3.1) its first resumption after a
// suspension never runs: the program hangs.
@_spi(ExperimentalCustomExecutors) import _Concurrency
import CGreenLinux
import CLibev
import Glibc

/// The main thread's hub as Swift's main executor (`@MainActor` code) and
/// default executor (every task that names no other). Install it once,
/// before any task exists, in one of two ways:
///
/// ```swift
/// @_spi(ExperimentalCustomExecutors) import Green
///
/// // 1. The compiler's hook (needs -Xfrontend -disable-availability-checking
/// //    on Swift 6.3.1 for Linux); main must be async.
/// typealias DefaultExecutorFactory = GreenExecutorFactory
///
/// @main struct App {
///     static func main() async throws {
///         try await Task.sleep(for: .milliseconds(20))    // a libev timer
///         let n = try await Hub.current.handle.run {       // a greenlet, same thread
///             try Green.sleep(0.01)
///             return 42
///         }
///         print(n)
///     }
/// }
///
/// // 2. No flag: a synchronous main hands its async part over.
/// GreenExecutorFactory.runMain {
///     try await Task.sleep(for: .milliseconds(20))
/// }
/// ```
///
/// Main-actor code, tasks and greenlets then take turns on the main
/// thread. Jobs must not block (green blocking calls throw
/// `GreenError.blockingCallOnHub` in them); `Task.sleep` is a libev timer;
/// `DispatchQueue.main` is drained by the hub. For parallel async work,
/// prefer another executor explicitly:
/// `Task(executorPreference: PlatformExecutorFactory.defaultExecutor)`.
@_spi(ExperimentalCustomExecutors)
public enum GreenExecutorFactory: ExecutorFactory {
    /// The main hub's main-actor executor. Made on first use, which must be
    /// on the main thread.
    public static var mainExecutor: any MainExecutor { MainHubExecutor.shared }

    /// The main hub's `HubExecutor`.
    public static var defaultExecutor: any TaskExecutor { MainHubExecutor.shared.hubExecutor }

    /// Installs the factory, runs `body` as a main-actor task on the main
    /// hub, and runs the hub until `body` ends; then exits the process: 0,
    /// or 1 after printing the error `body` threw. Call it from a
    /// synchronous `main`, on the main thread, before anything creates a
    /// task (tasks made earlier stay on the executors they were given).
    public static func runMain(_ body: @escaping @MainActor () async throws -> Void) -> Never {
        _createExecutors(factory: GreenExecutorFactory.self)
        Task { @MainActor in
            do {
                try await body()
            } catch {
                exitReporting(error)
            }
            exit(0)
        }
        do {
            try MainHubExecutor.shared.run()
        } catch {
            exitReporting(error)
        }
        // Someone called `MainActor.executor.stop()`.
        exit(0)
    }

    private static func exitReporting(_ error: any Error) -> Never {
        var line = "Error: \(error)\n"
        line.withUTF8 { _ = writeAll(fd: 2, $0) }
        exit(1)
    }
}

/// The main actor's executor on the main thread's hub. Its jobs go to the
/// hub's job queue, run isolated to it (see `HubExecutor.run`).
///
/// `@unchecked Sendable`: `hubExecutor` and `queue` are immutable and
/// thread-safe (any thread may `enqueue`); `hub` and `runners` are used
/// on the main hub's thread only (`run`, `stopInnermost`; `stop` from
/// elsewhere posts to the mailbox). The main thread's hub lives as long as
/// the process, so the unretained `hub` never dangles.
final class MainHubExecutor: MainExecutor, @unchecked Sendable {
    /// The one instance, made on the main thread by the first use of the
    /// factory.
    static let shared = MainHubExecutor()

    let hubExecutor: HubExecutor
    private let queue: HubJobQueue
    private unowned(unsafe) let hub: Hub
    /// Greenlets inside `run()`, innermost last.
    private var runners: [Runner] = []

    private final class Runner {
        let waiter: RemoteWaiter
        var stopped = false
        init(waiter: RemoteWaiter) { self.waiter = waiter }
    }

    private init() {
        precondition(green_is_main_thread() != 0,
                     "swift-green: GreenExecutorFactory must be installed on the main thread")
        let hub = Hub.current
        self.hub = hub
        hubExecutor = hub.executor
        queue = hubExecutor.queue
        hubExecutor.mainActorExecutor = UnownedSerialExecutor(ordinary: self)
        drainDispatchMainQueue()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        queue.enqueue(HubJob(job: UnownedJob(job), side: .mainActor))
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func isSameExclusiveExecutionContext(other: MainHubExecutor) -> Bool { other === self }

    /// As for the hub's actors (`HubSerialExecutor`): on the hub's thread,
    /// nothing else runs while a context runs.
    func checkIsolated() {
        precondition(queue.onHubThread, "swift-green: main-actor code ran off the main hub's thread")
    }

    /// Parks the calling greenlet (the main one, from the async entry point
    /// or `runMain`) while the hub's loop runs jobs and greenlets, until
    /// `stop()`. The waiting counts as a live wake-up source: jobs may
    /// arrive from other threads at any time. Main thread, not from a job.
    func run() throws {
        precondition(queue.onHubThread, "swift-green: MainActor.executor.run() called off the main thread")
        let hub = self.hub
        let me: AnyGreenlet = hub.current
        try hub.checkMayBlock(me, in: "MainActor.executor.run")
        let runner = Runner(waiter: RemoteWaiter(hub: hub, greenlet: me))
        runners.append(runner)
        defer {
            runner.waiter.end()
            runners.removeAll { $0 === runner }
        }
        while !runner.stopped {
            try hub.park(me, on: "MainActor.executor.run")
        }
    }

    /// Makes the innermost `run()` return. Any thread.
    func stop() {
        if queue.onHubThread {
            stopInnermost()
        } else {
            queue.mailbox.post { [self] in stopInnermost() }
        }
    }

    private func stopInnermost() {
        guard let runner = runners.last else { return }
        runner.stopped = true
        runner.waiter.wake()
    }

    /// Drains `DispatchQueue.main` on the hub's loop: libdispatch signals
    /// an eventfd when the queue has work, as it does for Foundation's run
    /// loop. Does nothing if libdispatch lacks the entry points.
    private func drainDispatchMainQueue() {
        guard let handleSymbol = dlsym(nil, "_dispatch_get_main_queue_handle_4CF"),
              let drainSymbol = dlsym(nil, "_dispatch_main_queue_callback_4CF") else { return }
        let handle = unsafeBitCast(handleSymbol, to: (@convention(c) () -> Int32).self)()
        guard handle >= 0 else { return }
        let watcher = UnsafeMutablePointer<ev_io>.allocate(capacity: 1)
        watcher.initialize(to: ev_io())
        green_ev_io_init(watcher, { _, w, _ in
            // Reset the eventfd first: a block queued while the queue
            // drains signals it again.
            var count: UInt64 = 0
            _ = read(w!.pointee.fd, &count, 8)
            let drain = unsafeBitCast(w!.pointee.data, to: (@convention(c) (UnsafeMutableRawPointer?) -> Void).self)
            drain(nil)
        }, handle, Int32(EV_READ))
        watcher.pointee.data = drainSymbol
        ev_io_start(hub.loop, watcher)
        // Work queued there does not keep the loop alive by itself (the
        // watcher lives as long as the process).
        ev_unref(hub.loop)
    }
}
