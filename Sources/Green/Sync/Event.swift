/// A flag greenlets can wait for, like gevent's `Event`: `wait` blocks
/// until `set` is called; `set` wakes every waiter; `clear` lowers the
/// flag again. A waiter released by a `set` returns even if `clear` came
/// before it ran. `wait` blocks only the calling greenlet. Confined to the
/// hub's thread.
public final class Event {
    @exclusivity(unchecked) private var flag = false
    private let waiters = WaitList()

    /// An event with its flag down.
    public init() {}

    /// Whether the flag is set.
    public var isSet: Bool { flag }

    /// Raises the flag and wakes every waiting greenlet (in the order they
    /// started waiting). Does not block.
    public func set() {
        flag = true
        if !waiters.isEmpty { waiters.grantAll() }
    }

    /// Lowers the flag; later waiters block until the next `set`.
    public func clear() { flag = false }

    /// Blocks the calling greenlet until the flag is set, at most
    /// `timeout` seconds. Returns whether the flag was set. Throws if the
    /// greenlet is killed or an enclosing timeout expires.
    @discardableResult
    public func wait(timeout: Double? = nil) throws -> Bool {
        if flag { return true }
        let outcome = try Hub.wait(in: waiters, on: "Event.wait", timeout: timeout,
                                   takeDirectly: { self.flag })
        return outcome == .granted || flag
    }
}
