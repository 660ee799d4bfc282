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
///
/// `@unchecked Sendable`: `mailbox` and `thread` are immutable, `alive` is
/// atomic; the unretained `hub` is used only when `onHubThread` holds (the
/// hub's thread, and `alive`, which `hubGone` clears in the hub's deinit,
/// so a reused thread id never reaches a freed hub).
final class HubJobQueue: @unchecked Sendable {
    let mailbox: HubMailbox
    private let thread: pthread_t
    private let alive = Atomic<Bool>(true)
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
