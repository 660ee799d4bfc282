import Synchronization

/// A way to reach a hub from any thread: spawn a greenlet on it, or (from
/// async code) run a greenlet there and await its result. Get one from
/// `Hub.current.handle` on the hub's thread, or from a `HubThread`.
///
/// What runs where: the closure always runs in a new greenlet on the
/// hub's own thread; the caller's thread only queues it (through the
/// hub's `ev_async` wake-up) and never blocks.
public struct HubHandle: Sendable {
    let mailbox: HubMailbox

    /// Spawns `body` as a greenlet on the hub. Returns false (and runs
    /// nothing) if the hub's thread has exited. An error `body` throws is
    /// reported like any greenlet's. Any thread.
    @discardableResult
    public func spawn(name: String? = nil, _ body: @escaping @Sendable () throws -> Void) -> Bool {
        mailbox.post {
            // On the hub's thread, inside its loop: spawning only queues.
            _ = Greenlet<Void>.spawn(name: name, body)
        }
    }

    /// From async code: runs `body` in a greenlet on the hub and returns
    /// its result (or rethrows its error) without blocking the task's
    /// thread. Throws `GreenError.hubGone` if the hub's thread has exited.
    /// Cancelling the task kills the greenlet (it throws `GreenletExit`
    /// at its blocking point).
    public func run<T: Sendable>(name: String? = nil,
                                 _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let link = BridgeLink()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                // From a task already on the hub's thread (its executor),
                // nothing crosses a thread: the greenlet is spawned at once.
                let posted = mailbox.runOrPost {
                    // On the hub's thread.
                    let g = Greenlet<Void>.spawn(name: name) {
                        link.bodyStarted = true
                        do {
                            continuation.resume(returning: try body())
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    }
                    // Killed before it ever ran: the body cannot resume.
                    g.linkAny { g in
                        if !link.bodyStarted { continuation.resume(throwing: g.error ?? GreenletExit()) }
                    }
                    link.attach(g)
                }
                if !posted { continuation.resume(throwing: GreenError.hubGone) }
            }
        } onCancel: {
            link.cancel(through: mailbox)
        }
    }
}

/// Links an async caller to the greenlet it waits for, so that cancelling
/// the task kills the greenlet.
final class BridgeLink: @unchecked Sendable {
    // Hub thread only.
    private var greenlet: AnyGreenlet?
    var bodyStarted = false
    // Any thread.
    private let cancelled = Atomic<Bool>(false)

    /// Hub thread: the greenlet exists now.
    func attach(_ g: AnyGreenlet) {
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

extension Hub {
    /// A handle to reach this hub from other threads.
    public var handle: HubHandle { HubHandle(mailbox: mailbox) }
}
