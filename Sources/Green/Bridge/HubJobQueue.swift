import Glibc
import Synchronization

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
final class HubJobQueue: @unchecked Sendable {
    // Immutable, or synchronized as said.
    let mailbox: HubMailbox
    private let thread: pthread_t
    private let alive = Atomic<Bool>(true)
    // Hub thread only (checked by `onHubThread`, and `alive` for a thread
    // id reused after the hub's thread exited).
    unowned(unsafe) let hub: Hub

    init(hub: Hub) {
        self.hub = hub
        mailbox = hub.mailbox
        thread = hub.thread
    }

    var onHubThread: Bool {
        pthread_equal(thread, pthread_self()) != 0 && alive.load(ordering: .acquiring)
    }

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

    func hubGone() { alive.store(false, ordering: .releasing) }
}
