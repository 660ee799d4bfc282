/// The serial executor of actors that live on a hub: their jobs run on
/// the hub's thread, one at a time, between greenlets. Get it from
/// `Hub.current.executor.serialExecutor`.
public final class HubSerialExecutor: SerialExecutor, Sendable {
    let queue: HubJobQueue

    init(queue: HubJobQueue) { self.queue = queue }

    public func enqueue(_ job: consuming ExecutorJob) {
        queue.enqueue(HubJob(job: UnownedJob(job), side: .actor))
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func isSameExclusiveExecutionContext(other: HubSerialExecutor) -> Bool { other === self }

    public func checkIsolated() {
        precondition(queue.onHubThread, "swift-green: code isolated to a hub's executor ran off the hub's thread")
    }
}
