/// The serial executor of actors that live on a hub: their jobs run on
/// the hub's thread, one at a time, between greenlets. Get it from
/// `Hub.current.executor.serialExecutor`.
public final class HubSerialExecutor: SerialExecutor, Sendable {
    let queue: HubJobQueue

    init(queue: HubJobQueue) { self.queue = queue }

    /// Queues an actor's `job` to run on the hub's thread (the Swift
    /// runtime calls this). Any thread; never blocks: from another thread
    /// it wakes the hub. Stops the process if the hub's thread has exited
    /// (a job cannot be dropped).
    public func enqueue(_ job: consuming ExecutorJob) {
        queue.enqueue(HubJob(job: UnownedJob(job), side: .actor))
    }

    /// This executor as an actor's `unownedExecutor`. Any thread.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Whether `other` is this same executor (the runtime asks, to skip a
    /// hop between actors on one hub).
    public func isSameExclusiveExecutionContext(other: HubSerialExecutor) -> Bool { other === self }

    /// Stops the process unless called on the hub's thread: the runtime's
    /// check that code isolated to this executor runs where it should.
    public func checkIsolated() {
        precondition(queue.onHubThread, "swift-green: code isolated to a hub's executor ran off the hub's thread")
    }
}
