import Synchronization

/// Links an async caller to the greenlet it waits for, so that cancelling
/// the task kills the greenlet.
final class BridgeLink: @unchecked Sendable {
    // Hub thread only.
    private var greenlet: BridgeGreenlet?
    // Any thread.
    private let cancelled = Atomic<Bool>(false)

    /// Hub thread: spawns the greenlet that runs `body` and resumes
    /// `continuation`.
    func start(name: String?, body: @escaping () throws -> Void,
               continuation: UnsafeContinuation<Void, any Error>) {
        let g = BridgeGreenlet.spawn(name: name, body: body, continuation: continuation)
        greenlet = g
        if cancelled.load(ordering: .acquiring) { try? g.kill(block: false) }
    }

    /// Any thread: the task was cancelled.
    func cancel(through mailbox: HubMailbox) {
        cancelled.store(true, ordering: .releasing)
        mailbox.post { [self] in
            if let g = greenlet, !g.isReady { try? g.kill(block: false) }
        }
    }
}
