/// A condition variable over an `RLock`, like gevent's and Python's
/// `Condition`: a greenlet holding the lock calls `wait`, which releases
/// the lock, sleeps until `notify`, and takes the lock back before it
/// returns, even when it throws. Waiters are notified in FIFO order.
/// Waiting blocks only the calling greenlet. Confined to the hub's thread.
///
/// ```swift
/// try cond.withLock {
///     while items.isEmpty { try cond.wait() }
///     use(items.removeFirst())
/// }
/// ```
public final class Condition {
    /// The lock `wait` releases and re-takes.
    public let lock: RLock
    private let waiters = WaitList()

    /// A condition over `lock` (a new one by default).
    public init(lock: RLock = RLock()) {
        self.lock = lock
    }

    /// Runs `body` holding the condition's lock; see
    /// `RLock.withLock(_:)`.
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        try lock.withLock(body)
    }

    /// Releases the lock, waits for a notification at most `timeout`
    /// seconds, and re-takes the lock (at the same re-entrance depth).
    /// Returns whether it was notified. Throws `SyncError.notOwner` if the
    /// caller does not hold the lock; throws if the caller is killed or an
    /// enclosing timeout expires, and then too it holds the lock again.
    @discardableResult
    public func wait(timeout: Double? = nil) throws -> Bool {
        let hub = Hub.current
        let me: AnyGreenlet = hub.current
        try lock.requireOwner(me)
        let depth = lock.releaseAll()
        let outcome: WaitNode.Outcome?
        do {
            outcome = try hub.wait(in: waiters, on: "Condition.wait", timeout: timeout)
        } catch {
            try lock.reacquire(depth: depth, hub: hub, me: me)
            throw error
        }
        try lock.reacquire(depth: depth, hub: hub, me: me)
        return outcome == .granted
    }

    /// Wakes up to `n` waiting greenlets, oldest first. Never blocks. The
    /// caller must hold the lock: otherwise it throws `SyncError.notOwner`
    /// (owner "nobody" when no greenlet holds it).
    public func notify(_ n: Int = 1) throws {
        try lock.requireOwner(Hub.current.current)
        var left = n
        while left > 0, waiters.grantFirst() { left -= 1 }
    }

    /// Wakes every waiting greenlet. Never blocks; throws as `notify` does
    /// if the caller does not hold the lock.
    public func notifyAll() throws {
        try lock.requireOwner(Hub.current.current)
        waiters.grantAll()
    }
}
