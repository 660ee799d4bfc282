/// A mutual-exclusion lock for greenlets, like gevent's `Lock`: one holder
/// at a time; others wait in FIFO order and the lock passes straight to the
/// first of them. Not re-entrant (see `RLock`): acquiring it twice from one
/// greenlet waits for a release that only another greenlet can make. Any
/// greenlet may release it, as with Python's `threading.Lock`. Waiting
/// blocks only the calling greenlet. Confined to the hub's thread.
///
/// ```swift
/// let lock = Lock()
/// try lock.withLock { balance += amount }
/// ```
public final class Lock {
    @exclusivity(unchecked) private var locked = false
    let waiters = WaitList()

    /// An unlocked lock.
    public init() {}

    /// Whether some greenlet holds the lock.
    public var isLocked: Bool { locked }

    /// Takes the lock, waiting at most `timeout` seconds (forever if nil).
    /// Returns whether it was taken. Throws if the calling greenlet is
    /// killed or an enclosing timeout expires; it then does not hold it.
    @discardableResult @inline(__always)
    public func acquire(timeout: Double? = nil) throws -> Bool {
        if tryAcquire() { return true }
        return try Hub.wait(in: waiters, on: "Lock.acquire", timeout: timeout,
                                    takeDirectly: tryAcquire) == .granted
    }

    /// Takes the lock if it is free now; never waits.
    @inline(__always)
    public func tryAcquire() -> Bool {
        if locked { return false }
        locked = true
        return true
    }

    /// Releases the lock, handing it to the first waiter if any. Throws
    /// `SyncError.notLocked` if it is not held.
    @inline(__always)
    public func release() throws {
        guard locked else { throw SyncError.notLocked("Lock") }
        if waiters.isEmpty || !waiters.grantFirst() { locked = false }
    }

    /// Runs `body` holding the lock: takes it as `acquire()` does (and
    /// throws as it does), releases it when `body` returns or throws, and
    /// rethrows what `body` throws.
    @inline(__always)
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        try acquire()
        defer { try! release() }
        return try body()
    }
}
