/// A way to reach a hub from any thread: spawn a greenlet on it, or (from
/// async code) run a greenlet there and await its result. Get one from
/// `Hub.current.handle` on the hub's thread, or from a `HubThread`.
///
/// What runs where: the closure always runs in a new greenlet on the
/// hub's own thread; the caller's thread only queues it (through the
/// hub's `ev_async` wake-up) and never blocks. From a task already on the
/// hub's thread (one that prefers the hub's executor) nothing crosses a
/// thread: the greenlet is spawned at once.
public struct HubHandle: Sendable {
    @usableFromInline let mailbox: HubMailbox

    init(mailbox: HubMailbox) { self.mailbox = mailbox }

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
    /// at its blocking point; one that has not started never runs and the
    /// call throws `GreenletExit`).
    ///
    /// Inlinable so that it is specialized for the caller's result type
    /// (see AsyncBridge.swift); the rest is `BridgeLink`.
    @inlinable
    public func run<T: Sendable>(name: String? = nil,
                                 _ body: @escaping @Sendable () throws -> T) async throws -> T {
        // The greenlet writes the result here before it resumes the task,
        // which waits for that resumption whatever happens: the slot is
        // this frame's, and outlives every write (`SendableAddress`).
        let slot = UnsafeMutablePointer<T?>.allocate(capacity: 1)
        slot.initialize(to: nil)
        defer {
            slot.deinitialize(count: 1)
            slot.deallocate()
        }
        let address = SendableAddress(UnsafeMutableRawPointer(slot))
        let link = BridgeLink()
        let mailbox = self.mailbox
        let store: @Sendable () throws -> Void = {
            address.raw.assumingMemoryBound(to: T?.self).pointee = try body()
        }
        do {
            try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                    link.start(name: name, body: store, continuation: continuation, through: mailbox)
                }
            } onCancel: {
                link.cancel(through: mailbox)
            }
        } catch {
            link.resumed()
            throw error
        }
        link.resumed()
        // Taken out, leaving nil for the `defer` to deinitialize (a
        // `move()` would leave the memory uninitialized, and the `defer`
        // would release the result a second time).
        return slot.pointee.take()!
    }

}

extension Hub {
    /// A handle to reach this hub from other threads.
    public var handle: HubHandle { HubHandle(mailbox: mailbox) }
}
