// The hub as a Swift executor (SE-0417 `TaskExecutor`, and a
// `SerialExecutor` for actors): async jobs run on the hub's thread inside
// its libev loop, between greenlets, so async code and greenlets share one
// thread and one loop, and a crossing between them is a switch, not a
// thread hop.
//
// Two executors, one queue. `HubExecutor` is the task executor: a task that
// prefers it runs its nonisolated code here. `HubSerialExecutor` is the
// serial executor of actors that live on the hub. Both feed the hub's one
// FIFO of jobs, each job marked with the side it came through, because a
// job must run in the context it was enqueued for: a task's job with the
// hub as its task executor only (so nonisolated code runs on without
// hopping: the runtime sees it already is where such code runs), an actor's
// job isolated to the serial executor as well. Running every job as
// isolated, as one object conforming to both would have to, makes each
// nonisolated task hop once more when it starts (another enqueue, another
// job) and doubled the cost of `awaitAsync`.
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

/// A hub as an executor for tasks (`Task(executorPreference:)`,
/// `withTaskExecutorPreference`); `serialExecutor` (or
/// `asUnownedSerialExecutor()`) is the executor of actors that live on the
/// hub. Get it from `Hub.current.executor` on the hub's thread. Jobs may be
/// enqueued from any thread; from the hub's own thread nothing crosses a
/// thread.
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
public final class HubExecutor: TaskExecutor, @unchecked Sendable {
    // `@unchecked Sendable`: `queue` and `serialExecutor` are immutable and
    // thread-safe; `mainActorExecutor` is written once, on the hub's thread
    // before its first job, and read only there, by `run`.
    let queue: HubJobQueue
    /// The serial executor of actors that live on this hub.
    public let serialExecutor: HubSerialExecutor

    /// Jobs run per loop turn at most, before ready greenlets get a turn.
    public static let jobBatch = 64

    init(hub: Hub) {
        queue = HubJobQueue(hub: hub)
        serialExecutor = HubSerialExecutor(queue: queue)
    }

    /// Queues `job` to run on the hub's thread as a task's job (the
    /// Swift runtime calls this). Any thread; never blocks: from another
    /// thread it wakes the hub. Stops the process if the hub's thread has
    /// exited (a job cannot be dropped).
    public func enqueue(_ job: consuming ExecutorJob) {
        queue.enqueue(HubJob(job: UnownedJob(job), side: .task))
    }

    /// This executor as the runtime's unowned task executor. Any thread.
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// The serial executor of actors that live on this hub (an actor's
    /// `unownedExecutor`).
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        serialExecutor.asUnownedSerialExecutor()
    }

    /// The main actor's executor when this hub is it (see
    /// `GreenExecutorFactory`): set once, on the hub's thread, before its
    /// first job.
    @exclusivity(unchecked) var mainActorExecutor: UnownedSerialExecutor?

    /// Runs `job` on the hub's thread, in the context it was enqueued for.
    @inline(__always)
    func run(_ job: HubJob) {
        switch job.side {
        case .task:
            job.job.runSynchronously(on: asUnownedTaskExecutor())
        case .actor:
            job.job.runSynchronously(isolatedTo: serialExecutor.asUnownedSerialExecutor(),
                                     taskExecutor: asUnownedTaskExecutor())
        case .mainActor:
            // As Swift's own main executors run them: isolated, no task
            // executor (counted: the same jobs per hop either way).
            job.job.runSynchronously(on: mainActorExecutor!)
        }
    }
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
