/// A flag greenlets can wait for, like gevent's `Event`: `wait` blocks
/// until `set` is called; `set` wakes every waiter; `clear` lowers the
/// flag again. Confined to the hub's thread.
public final class Event {
    private var flag = false
    private var waiters: [AnyGreenlet] = []
    /// Counts `set` calls that released waiters: a waiter released by a
    /// `set` returns even if `clear` came before it ran.
    private var releases: UInt64 = 0

    public init() {}

    /// Whether the flag is set.
    public var isSet: Bool { flag }

    /// Raises the flag and wakes every waiting greenlet (in the order they
    /// started waiting). Does not block.
    public func set() {
        flag = true
        guard !waiters.isEmpty else { return }
        let hub = Hub.current
        let woken = waiters
        waiters = []
        releases &+= 1
        for g in woken { hub.ready(g) }
    }

    /// Lowers the flag; later waiters block until the next `set`.
    public func clear() { flag = false }

    /// Blocks the calling greenlet until the flag is set, at most
    /// `timeout` seconds. Returns whether the flag was set. Throws if the
    /// greenlet is killed or an enclosing timeout expires.
    @discardableResult
    public func wait(timeout: Double? = nil) throws -> Bool {
        if flag { return true }
        let hub = Hub.current
        let me: AnyGreenlet = hub.current
        let block = {
            let generation = self.releases
            self.waiters.append(me)
            defer { if self.releases == generation { self.remove(me) } }
            while !self.flag && self.releases == generation {
                try hub.park(me, on: "Event.wait")
            }
        }
        if let timeout {
            return try hub.withDeadline(timeout, block) || flag
        }
        try block()
        return true
    }

    private func remove(_ g: AnyGreenlet) {
        if let i = waiters.firstIndex(where: { $0 === g }) { waiters.remove(at: i) }
    }
}
