// The hub as a Swift executor (SE-0417 `TaskExecutor`, and
// `SerialExecutor` for actors): async jobs run on the hub's thread inside
// its libev loop, between greenlets, so async code and greenlets share one
// thread and one loop, and a crossing between them is a switch, not a
// thread hop.
//
// Where jobs run: on the hub's own context, in batches of at most
// `jobBatch` per loop turn, between runs of ready greenlets (each turn
// runs ready greenlets for a bounded budget, then jobs): a stream of jobs
// cannot starve greenlets, nor greenlets jobs. A job runs to its next
// suspension point and must not block: a blocking green API called from a
// job (sleep, a socket read, a lock, a queue, a join) throws
// `GreenError.blockingCallOnHub` at once, never hangs the hub. (Running
// jobs on greenlets instead would let them block, but a job switched out
// mid-way would leave the runtime's per-thread "current task" state to the
// next job; the rule keeps that state whole.)
import Glibc
import Synchronization

/// A hub as an executor for tasks (`Task(executorPreference:)`,
/// `withTaskExecutorPreference`) and actors (`unownedExecutor`). Get it
/// from `Hub.current.executor` on the hub's thread. Jobs may be enqueued
/// from any thread; from the hub's own thread nothing crosses a thread.
///
/// ```swift
/// let hub = Hub.current
/// let value = try awaitAsync { await cache.lookup(key) }       // on this hub
/// Task(executorPreference: hub.executor) { await work() }     // runs here too
///
/// actor Cache {
///     let hubExecutor = Hub.current.executor
///     nonisolated var unownedExecutor: UnownedSerialExecutor { hubExecutor.asUnownedSerialExecutor() }
/// }
/// ```
public final class HubExecutor: TaskExecutor, SerialExecutor, @unchecked Sendable {
    // Immutable, or synchronized as said.
    private let mailbox: HubMailbox
    private let thread: pthread_t
    private let alive = Atomic<Bool>(true)
    // Hub thread only (checked by `onHubThread`, and `alive` for a thread
    // id reused after the hub's thread exited).
    private unowned(unsafe) let hub: Hub

    /// Jobs run per loop turn at most, before ready greenlets get a turn.
    public static let jobBatch = 64

    init(hub: Hub) {
        self.hub = hub
        mailbox = hub.mailbox
        thread = hub.thread
    }

    private var onHubThread: Bool {
        pthread_equal(thread, pthread_self()) != 0 && alive.load(ordering: .acquiring)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if onHubThread {
            hub.executorJobs.append(job)
            return
        }
        if !mailbox.postJob(job) {
            // A job cannot be dropped: its task would never finish.
            fatalError("swift-green: an async job was sent to a hub whose thread has exited (its HubExecutor outlived it)")
        }
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func isSameExclusiveExecutionContext(other: HubExecutor) -> Bool { other === self }

    public func checkIsolated() {
        precondition(onHubThread, "swift-green: code isolated to a hub's executor ran off the hub's thread")
    }

    /// Runs `job` on the hub's thread.
    func run(_ job: UnownedJob) {
        job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
    }

    /// The hub's thread is exiting. Hub thread.
    func hubGone() { alive.store(false, ordering: .releasing) }
}

extension Hub {
    /// The hub as a Swift executor (see `HubExecutor`). Hub thread only.
    public var executor: HubExecutor {
        if let e = executorStorage { return e }
        let e = HubExecutor(hub: self)
        executorStorage = e
        return e
    }

    /// Runs a batch of queued async jobs, oldest first; returns how many.
    /// Hub greenlet only.
    @discardableResult
    func runExecutorJobs() -> Int {
        let executor = self.executor
        var ran = 0
        while ran < HubExecutor.jobBatch && jobsHead < executorJobs.count {
            let job = executorJobs[jobsHead]
            jobsHead += 1
            ran += 1
            executor.run(job)
        }
        if jobsHead == executorJobs.count {
            executorJobs.removeAll(keepingCapacity: true)
            jobsHead = 0
        } else if jobsHead > 4096 && jobsHead * 2 > executorJobs.count {
            executorJobs.removeFirst(jobsHead)
            jobsHead = 0
        }
        return ran
    }
}
