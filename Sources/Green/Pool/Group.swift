/// A set of greenlets managed together, like gevent's `Group`: spawn into
/// it, wait for all of them, kill all of them, and map work over them.
/// A greenlet leaves the group when it finishes. Unbounded; see `Pool` for
/// a bounded one. Confined to the hub's thread. Its waits (joins, a full
/// pool's spawn, maps) block only the calling greenlet and throw the
/// interrupt when it is killed or an enclosing timeout expires.
///
/// ```swift
/// let group = Group()
/// for url in urls { group.spawn { try fetch(url) } }
/// try group.join()
/// ```
public class Group {
    @exclusivity(unchecked) private var members: [ObjectIdentifier: AnyGreenlet] = [:]
    /// Greenlets waiting in `join` (granted when the group empties).
    private let joiners = WaitList()
    /// Greenlets waiting in `waitAvailable` or `Pool.spawn`.
    let slotWaiters = WaitList()

    /// How the group's greenlets keep their stacks (see `StackMode`).
    public let stackMode: StackMode

    /// An empty group on the calling thread's hub; its greenlets keep
    /// their stacks as `stackMode` says.
    public init(stackMode: StackMode = .default) {
        self.stackMode = stackMode
    }

    // MARK: - Members

    /// How many greenlets the group holds (unfinished, or added).
    public var count: Int { members.count }

    /// The greenlets the group holds, in no particular order.
    public var greenlets: [AnyGreenlet] { Array(members.values) }

    /// Whether `g` is in the group.
    public func contains(_ g: AnyGreenlet) -> Bool { members[ObjectIdentifier(g)] != nil }

    /// Slots free for `spawn` without waiting (`Int.max` for a `Group`).
    public var freeCount: Int { Int.max }

    /// Spawns `body` as a greenlet of this group. In a `Pool`, waits while
    /// the pool is full (throwing the interrupt if the wait is cut short);
    /// a `Group` never waits or throws.
    @discardableResult
    public func spawn<T>(name: String? = nil, stackSize: Int = 0,
                         _ body: @escaping () throws -> T) throws -> Greenlet<T> {
        try reserveSlot(timeout: nil)
        return start(name: name, stackSize: stackSize, body)
    }

    /// Adds a greenlet spawned elsewhere (of this thread); it leaves the
    /// group when it finishes. A finished greenlet is not added. In a
    /// `Pool`, waits while the pool is full, as `spawn` does.
    public func add(_ g: AnyGreenlet) throws {
        guard !g.isReady, !contains(g) else { return }
        try reserveSlot(timeout: nil)
        track(g)
    }

    /// Removes `g` from the group without touching it; in a `Pool` its
    /// slot is freed.
    public func discard(_ g: AnyGreenlet) {
        guard members.removeValue(forKey: ObjectIdentifier(g)) != nil else { return }
        memberLeft()
    }

    func start<T>(name: String?, stackSize: Int, _ body: @escaping () throws -> T) -> Greenlet<T> {
        let g = Greenlet<T>.spawn(name: name, stackSize: stackSize, stackMode: stackMode, body)
        track(g)
        return g
    }

    private func track(_ g: AnyGreenlet) {
        members[ObjectIdentifier(g)] = g
        g.linkAny { [weak self] finished in self?.discard(finished) }
    }

    private func memberLeft() {
        slotFreed()
        if members.isEmpty { joiners.grantAll() }
    }

    // MARK: - Slots (a Pool bounds them)

    /// Takes a slot for a new member, waiting at most `timeout` seconds.
    /// A `Group` always has one.
    func reserveSlot(timeout: Double?) throws {}

    /// Takes a slot if one is free now.
    func tryReserveSlot() -> Bool { true }

    /// A member left: a `Pool` hands its slot on.
    func slotFreed() {}

    /// Waits until `spawn` would not wait, at most `timeout` seconds;
    /// returns whether it would not. A `Group` never waits; a `Pool`
    /// throws the interrupt if its wait is cut short.
    @discardableResult
    public func waitAvailable(timeout: Double? = nil) throws -> Bool { true }

    // MARK: - Joining and killing

    /// Waits until every greenlet of the group has finished, at most
    /// `timeout` seconds; returns whether they have. With `raiseError`,
    /// throws the error of the first member that fails meanwhile. Throws if
    /// the caller is killed or an enclosing timeout expires.
    @discardableResult
    public func join(timeout: Double? = nil, raiseError: Bool = false) throws -> Bool {
        if members.isEmpty { return true }
        let hub = Hub.current
        let me: AnyGreenlet = hub.current
        if contains(me) { throw PoolError.joinFromMember(name: me.name) }
        if raiseError {
            // The members of now; one that fails ends the wait.
            let snapshot = greenlets
            return try joinAll(snapshot, timeout: timeout, raiseError: true).count == snapshot.count
        }
        return try hub.wait(in: joiners, on: "Group.join", timeout: timeout) == .granted
    }

    /// Kills every greenlet of the group with `error` (see
    /// `Greenlet.kill`); with `block`, waits up to `timeout` seconds for
    /// them to finish. The calling greenlet, if a member, is spared. Throws
    /// the interrupt if the caller's wait is cut short.
    public func kill(_ error: any Error = GreenletExit(), block: Bool = true, timeout: Double? = nil) throws {
        let me = Hub.current.current!
        let targets = greenlets.filter { $0 !== me }
        try killAll(targets, error, block: block, timeout: timeout)
    }

    /// Waits up to `timeout` seconds for every member but the caller to
    /// finish, then kills those left (and waits for them). Returns whether
    /// all finished on their own: a server's graceful stop. Throws the
    /// interrupt if the caller's wait is cut short.
    @discardableResult
    public func drain(timeout: Double?) throws -> Bool {
        let me = Hub.current.current!
        let others = greenlets.filter { $0 !== me }
        let finished = try joinAll(others, timeout: timeout).count == others.count
        if !finished { try killAll(others.filter { !$0.isReady }) }
        return finished
    }

    // MARK: - Running work

    /// Runs `body` in a greenlet of the group and returns its result (or
    /// rethrows its error). Called from a greenlet of this group, runs
    /// `body` directly: waiting for a slot there could wait forever. The
    /// wait blocks only the calling greenlet; if it is killed or an
    /// enclosing timeout expires, the work is killed too and the interrupt
    /// thrown.
    public func apply<R>(_ body: @escaping () throws -> R) throws -> R {
        let hub = Hub.current
        if contains(hub.current) { return try body() }
        let g = try spawn(body)
        do {
            return try g.get()
        } catch {
            // Interrupted while waiting: the work stops too.
            if !g.isReady { try? shielded { try g.kill() } }
            throw error
        }
    }

    /// Applies `body` to every element, in greenlets of the group, and
    /// returns the results in the elements' order. At most the group's
    /// free slots run at once (a `Pool`'s size). The first error stops the
    /// rest (running ones are killed) and is rethrown once they ended. If
    /// the caller is itself a greenlet of this group it takes part in the
    /// work, so mapping from inside a pool never waits for its own slot.
    /// The wait blocks only the calling greenlet; if it is killed or an
    /// enclosing timeout expires, the work is stopped and the interrupt
    /// thrown.
    ///
    /// Elements are handed to a few worker greenlets in turn rather than
    /// one greenlet each: a greenlet per element would cost a spawn per
    /// element for nothing, since at most the pool's size run at once.
    @inlinable
    public func map<S: Sequence, R>(_ elements: S, _ body: @escaping (S.Element) throws -> R) throws -> [R] {
        try MapRun(group: self, all: Array(elements), body: body).collectAll()
    }

    /// Like `map`, but lazy: results come out in the elements' order as
    /// `next()` is called, while work runs ahead at most a window of
    /// elements (twice the concurrency). Elements are read from the
    /// sequence only as work starts on them. An error is thrown by the
    /// `next()` that reaches it, and ends the iteration.
    public func imap<S: Sequence, R>(_ elements: S, _ body: @escaping (S.Element) throws -> R) -> MapResults<R> {
        MapResults(MapRun(group: self, elements: elements, mode: .ordered, window: mapWindow, body: body))
    }

    /// Like `imap`, but results come out as they finish; `next()` throws
    /// as there.
    public func imapUnordered<S: Sequence, R>(_ elements: S,
                                              _ body: @escaping (S.Element) throws -> R) -> MapResults<R> {
        MapResults(MapRun(group: self, elements: elements, mode: .unordered, window: mapWindow, body: body))
    }

    /// How many workers a map uses at most: unbounded in a `Group` (one
    /// per element), a `Pool`'s size.
    var mapConcurrency: Int { Int.max }

    /// How far lazy maps run ahead of their reader: twice a pool's size
    /// (so that every worker of the pool can be busy), 1024 in a group.
    var mapWindow: Int { mapConcurrency == Int.max ? 1024 : max(2, 2 * mapConcurrency) }
}

/// Misuse of a group or pool.
public enum PoolError: Error, CustomStringConvertible {
    /// A greenlet of the group waited for the whole group, itself
    /// included: that wait could never end.
    case joinFromMember(name: String)

    /// What was misused, in a sentence.
    public var description: String {
        switch self {
        case .joinFromMember(let name):
            return "greenlet \(name) called join on its own group or pool, which would wait for itself forever"
        }
    }
}
