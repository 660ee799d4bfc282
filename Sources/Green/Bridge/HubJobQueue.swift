/// An async job for a hub and the side it came through.
struct HubJob {
    let job: UnownedJob
    let side: Side

    enum Side: UInt8 {
        /// Through the task executor (`HubExecutor`): a task's nonisolated
        /// code, or any job when the hub is Swift's default executor.
        case task
        /// Through the serial executor of actors on the hub
        /// (`HubSerialExecutor`).
        case actor
        /// Through the main actor's executor, on the main thread's hub
        /// when `GreenExecutorFactory` is installed (`MainHubExecutor`).
        case mainActor
    }
}

/// Where both executors of a hub put jobs.
///
/// `@unchecked Sendable`: `mailbox` is immutable and thread-safe; the
/// unretained `hub` is used only when `onHubThread` holds (the mailbox's
/// `isHubThread`: the hub's thread while the hub is there, closed in the
/// hub's deinit, so a reused thread id never reaches a freed hub).
final class HubJobQueue: @unchecked Sendable {
    let mailbox: HubMailbox
    unowned(unsafe) let hub: Hub

    init(hub: Hub) {
        self.hub = hub
        mailbox = hub.mailbox
    }

    var onHubThread: Bool { mailbox.isHubThread }

    func enqueue(_ job: HubJob) {
        if onHubThread {
            hub.executorJobs.append(job)
            return
        }
        if !mailbox.postJob(job) {
            // A job cannot be dropped: its task would never finish.
            fatalError("swift-green: an async job was sent to a hub whose thread has exited (its HubExecutor outlived it)")
        }
    }
}
