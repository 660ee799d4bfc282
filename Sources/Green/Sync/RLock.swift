/// A re-entrant lock owned by a greenlet, like gevent's `RLock`: its
/// holder may acquire it again (each acquire needs a release); other
/// greenlets wait in FIFO order. Only the holder may release it; anyone
/// else gets `SyncError.notOwner`. Waiting blocks only the calling
/// greenlet. Confined to the hub's thread.
public final class RLock {
    @exclusivity(unchecked) private(set) var owner: AnyGreenlet?
    @exclusivity(unchecked) private(set) var depth = 0
    let waiters = WaitList()

    /// An unlocked lock.
    public init() {}

    /// Whether some greenlet holds the lock.
    public var isLocked: Bool { owner != nil }

    /// Whether the calling greenlet holds the lock.
    public var isOwnedByCaller: Bool { owner === Hub.current.current }

    /// Takes the lock (again, if the caller holds it), waiting at most
    /// `timeout` seconds. Returns whether it was taken. Throws if the
    /// calling greenlet is killed or an enclosing timeout expires.
    @discardableResult
    public func acquire(timeout: Double? = nil) throws -> Bool {
        let hub = Hub.current
        let me: AnyGreenlet = hub.current
        if take(for: me) { return true }
        return try hub.wait(in: waiters, on: "RLock.acquire", timeout: timeout, count: 1,
                            takeDirectly: { self.take(for: me) }) == .granted
    }

    /// Takes the lock if it is free or the caller's; never waits.
    public func tryAcquire() -> Bool {
        take(for: Hub.current.current)
    }

    private func take(for me: AnyGreenlet) -> Bool {
        if owner === me {
            depth += 1
            return true
        }
        guard owner == nil else { return false }
        owner = me
        depth = 1
        return true
    }

    /// Releases one level of the caller's hold; the last one hands the
    /// lock to the first waiter. Throws `SyncError.notOwner` (or
    /// `.notLocked`) if the caller does not hold it.
    public func release() throws {
        try checkOwner(Hub.current.current)
        depth -= 1
        if depth == 0 { handOff() }
    }

    /// Runs `body` holding the lock: takes it as `acquire()` does (and
    /// throws as it does), releases it when `body` returns or throws, and
    /// rethrows what `body` throws.
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        let me = Hub.current.current!
        try acquire()
        // The hold is normally still the caller's; it is not only when a
        // `Condition.wait` inside was torn out of its re-acquire by an
        // unshieldable error (a deadlock report), which is thrown on.
        defer { if owner === me { try! release() } }
        return try body()
    }

    /// Throws unless `me` holds the lock: `notLocked` when nobody does
    /// (a release too many), `notOwner` when another greenlet does.
    func checkOwner(_ me: AnyGreenlet) throws {
        guard let owner else { throw SyncError.notLocked("RLock") }
        guard owner === me else {
            throw SyncError.notOwner(lock: "RLock", owner: owner.name, caller: me.name)
        }
    }

    /// Throws `notOwner` unless `me` holds the lock: for callers that must
    /// hold it (`Condition.wait`, `notify`).
    func requireOwner(_ me: AnyGreenlet) throws {
        guard owner === me else {
            throw SyncError.notOwner(lock: "RLock", owner: owner?.name ?? "nobody", caller: me.name)
        }
    }

    /// Gives the lock up entirely and returns the caller's depth, for
    /// `Condition.wait`. The caller holds it.
    func releaseAll() -> Int {
        let saved = depth
        depth = 0
        handOff()
        return saved
    }

    /// Takes the lock back at `depth` after `releaseAll`, holding kills
    /// and timeouts until it has it: the caller's code expects to hold it.
    /// Only an unshieldable error (a deadlock report) ends the wait
    /// without the lock; it is thrown.
    func reacquire(depth saved: Int, hub: Hub, me: AnyGreenlet) throws {
        me.shieldDepth += 1
        defer { me.shieldDepth -= 1 }
        if !take(for: me) {
            _ = try hub.wait(in: waiters, on: "RLock.acquire (after Condition.wait)", count: 1,
                             takeDirectly: { self.take(for: me) })
        }
        depth = saved
    }

    private func handOff() {
        if let n = waiters.firstGrantable() {
            owner = n.pointee.greenlet
            depth = n.pointee.count
            waiters.grant(n)
        } else {
            owner = nil
        }
    }
}
