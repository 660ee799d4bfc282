/// A `Group` of at most `size` greenlets, like gevent's `Pool`: `spawn`
/// waits while the pool is full, and a slot freed by a finishing greenlet
/// goes to the first waiting spawner. `map`, `imap` and
/// `imapUnordered` run at most `size` elements at once. Confined to the
/// hub's thread.
///
/// ```swift
/// let pool = Pool(size: 20)
/// let pages = try pool.map(urls) { try fetch($0) }
/// ```
///
/// A greenlet of the pool that spawns into its own full pool waits for
/// another member to finish; if none ever can, the hub reports the
/// deadlock (`GreenError.wouldBlockForever`, naming the waits) rather than
/// hanging. `map` and `apply` called from a member do the work in the
/// caller instead of waiting for a slot.
public final class Pool: Group {
    /// The most greenlets the pool runs at once.
    public let size: Int
    /// Slots held by members and by spawners between reserving and starting.
    @exclusivity(unchecked) private var reserved = 0
    private let availabilityWaiters = WaitList()

    /// An empty pool of `size` slots (at least 1) on the calling thread's
    /// hub; its greenlets keep their stacks as `stackMode` says.
    public init(size: Int, stackMode: StackMode = .default) {
        precondition(size >= 1, "Pool(size:) needs a size of at least 1, got \(size)")
        self.size = size
        super.init(stackMode: stackMode)
    }

    /// Slots free for `spawn` without waiting.
    public override var freeCount: Int { size - reserved }

    /// Whether `spawn` would wait now.
    public var isFull: Bool { reserved >= size }

    override var mapConcurrency: Int { size }

    /// Spawns `body` if a slot is free now; otherwise throws `PoolFull`.
    @discardableResult
    public func spawnNowait<T>(name: String? = nil, stackSize: Int = 0,
                               _ body: @escaping () throws -> T) throws -> Greenlet<T> {
        guard takeFreeSlot() else { throw PoolFull(size: size) }
        return start(name: name, stackSize: stackSize, body)
    }

    /// Spawns `body` once a slot is free, waiting at most `timeout`
    /// seconds; throws `PoolFull` if none freed in time, or the interrupt
    /// if the wait is cut short.
    @discardableResult
    public func spawn<T>(timeout: Double?, name: String? = nil, stackSize: Int = 0,
                         _ body: @escaping () throws -> T) throws -> Greenlet<T> {
        try reserveSlot(timeout: timeout)
        return start(name: name, stackSize: stackSize, body)
    }

    private func takeFreeSlot() -> Bool {
        guard reserved < size else { return false }
        reserved += 1
        return true
    }

    override func reserveSlot(timeout: Double?) throws {
        // A free slot means nobody waits for one: a freed slot goes to a
        // parked waiter directly.
        if takeFreeSlot() { return }
        let hub = Hub.current
        let what: StaticString = contains(hub.current)
            ? "Pool.spawn (the pool is full and the caller is one of its greenlets)"
            : "Pool.spawn"
        let outcome = try hub.wait(in: slotWaiters, on: what, timeout: timeout, takeDirectly: takeFreeSlot)
        if outcome != .granted { throw PoolFull(size: size) }
    }

    override func tryReserveSlot() -> Bool { takeFreeSlot() }

    override func slotFreed() {
        if !slotWaiters.isEmpty, let n = slotWaiters.firstGrantable() {
            // The slot passes to the waiter; `reserved` stays.
            slotWaiters.grant(n)
            return
        }
        reserved -= 1
        if !availabilityWaiters.isEmpty { availabilityWaiters.grantAll() }
    }

    /// Waits until a slot is free, at most `timeout` seconds; returns
    /// whether one is. Takes nothing: a spawn right after it does not wait.
    /// Throws the interrupt if the wait is cut short.
    @discardableResult
    public override func waitAvailable(timeout: Double? = nil) throws -> Bool {
        if reserved < size { return true }
        let outcome = try Hub.wait(in: availabilityWaiters, on: "Pool.waitAvailable", timeout: timeout,
                                           takeDirectly: { self.reserved < self.size })
        return outcome == .granted
    }
}

/// `Pool.spawnNowait` on a full pool, or `Pool.spawn(timeout:)` that found
/// no free slot in time.
public struct PoolFull: Error, CustomStringConvertible {
    /// The pool's size.
    public let size: Int
    /// "the pool is full (size N)".
    public var description: String { "the pool is full (size \(size))" }
}
