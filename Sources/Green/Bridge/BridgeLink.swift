import CGreenContext
import Synchronization

/// Links an async caller to the greenlet it waits for, so that cancelling
/// the task kills the greenlet.
///
/// `@unchecked Sendable`: `greenlet` is read and written only on the hub's
/// thread (in `start`, directly when `isHubThread` or through the mailbox,
/// and in the job `cancel` posts); `cancelled` is atomic.
@usableFromInline
final class BridgeLink: @unchecked Sendable {
    private var greenlet: BridgeGreenlet?
    private let cancelled = Atomic<Bool>(false)

    @usableFromInline init() {}

    /// Any thread: spawns, on the hub of `mailbox`, the greenlet that runs
    /// `body` and resumes `continuation` (at once when called on the hub's
    /// thread; through the mailbox from any other, resuming with
    /// `GreenError.hubGone` if the hub's thread has exited).
    @usableFromInline
    func start(name: String?, body: @escaping @Sendable () throws -> Void,
               continuation: UnsafeContinuation<Void, any Error>, through mailbox: HubMailbox) {
        if mailbox.isHubThread {
            start(name: name, body: body, continuation: continuation)
        } else if !mailbox.post({ self.start(name: name, body: body, continuation: continuation) }) {
            continuation.resume(throwing: GreenError.hubGone)
        }
    }

    /// Hub thread: spawns the greenlet.
    private func start(name: String?, body: @escaping () throws -> Void,
                       continuation: UnsafeContinuation<Void, any Error>) {
        let g = BridgeGreenlet.spawn(name: name, body: body, continuation: continuation, link: key)
        greenlet = g
        if cancelled.load(ordering: .acquiring) { try? g.kill(block: false) }
    }

    /// This link's key for ThreadSanitizer's edge from the greenlet's
    /// resumption of the task to the task (`green_tsan_release`).
    var key: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// The task, resumed: what the greenlet wrote before it resumed the
    /// task is visible here (it is; this tells ThreadSanitizer so).
    @usableFromInline
    func resumed() {
        green_tsan_acquire(key)
    }

    /// Any thread: the task was cancelled.
    @usableFromInline
    func cancel(through mailbox: HubMailbox) {
        cancelled.store(true, ordering: .releasing)
        mailbox.post { [self] in
            if let g = greenlet, !g.isReady { try? g.kill(block: false) }
        }
    }
}
