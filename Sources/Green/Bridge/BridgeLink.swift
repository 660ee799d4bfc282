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
        let g = BridgeGreenlet.spawn(name: name, body: body, continuation: continuation)
        greenlet = g
        if cancelled.load(ordering: .acquiring) { try? g.kill(block: false) }
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
