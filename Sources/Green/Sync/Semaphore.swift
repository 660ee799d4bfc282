/// A counter of permits, like gevent's `Semaphore`: `acquire` takes one,
/// waiting while there is none; `release` gives one back. Waiters are
/// served in the order they started waiting, and a released permit goes
/// straight to the first waiter (no barging by a greenlet that was not
/// waiting). Waiting blocks only the calling greenlet. Confined to the
/// hub's thread.
///
/// ```swift
/// let slots = Semaphore(value: 10)
/// try slots.withPermit { try fetch(url) }   // at most 10 at once
/// ```
public final class Semaphore {
    @exclusivity(unchecked) private var permits: Int
    let waiters = WaitList()

    /// A semaphore with `value` permits (at least 0).
    public init(value: Int = 1) {
        precondition(value >= 0, "Semaphore(value:) needs a value of at least 0, got \(value)")
        permits = value
    }

    /// Permits available now.
    public var value: Int { permits }

    /// Whether `acquire` would wait now.
    public var isLocked: Bool { permits == 0 }

    /// Takes a permit, waiting for one at most `timeout` seconds (forever
    /// if nil). Returns whether it got one. Throws if the calling greenlet
    /// is killed or an enclosing timeout expires; it then holds no permit.
    @discardableResult
    public func acquire(timeout: Double? = nil) throws -> Bool {
        // A free permit means nobody is parked for one: a release hands
        // its permit to a parked waiter directly.
        if tryAcquire() { return true }
        return try Hub.wait(in: waiters, on: "Semaphore.acquire", timeout: timeout,
                                    takeDirectly: tryAcquire) == .granted
    }

    /// Takes a permit if one is free now; never waits.
    public func tryAcquire() -> Bool {
        guard permits > 0 else { return false }
        permits -= 1
        return true
    }

    /// Gives a permit back: to the first waiter if there is one.
    public func release() {
        if !waiters.grantFirst() { permits += 1 }
    }

    /// Runs `body` holding a permit: takes one as `acquire()` does (and
    /// throws as it does), gives it back when `body` returns or throws,
    /// and rethrows what `body` throws.
    public func withPermit<R>(_ body: () throws -> R) throws -> R {
        try acquire()
        defer { release() }
        return try body()
    }
}

/// A `Semaphore` that refuses to be released more often than acquired:
/// `release` above the initial value throws `SyncError.overReleased`
/// instead of silently growing the number of permits. Confined to the
/// hub's thread, as `Semaphore`.
public final class BoundedSemaphore {
    private let semaphore: Semaphore
    /// The initial, and highest, number of permits.
    public let bound: Int

    /// A semaphore with `value` permits (at least 0), never more.
    public init(value: Int = 1) {
        semaphore = Semaphore(value: value)
        bound = value
    }

    /// Permits available now.
    public var value: Int { semaphore.value }
    /// Whether `acquire` would wait now.
    public var isLocked: Bool { semaphore.isLocked }

    /// Takes a permit, waiting and throwing as `Semaphore.acquire` does.
    @discardableResult
    public func acquire(timeout: Double? = nil) throws -> Bool { try semaphore.acquire(timeout: timeout) }

    /// Takes a permit if one is free now; never waits.
    public func tryAcquire() -> Bool { semaphore.tryAcquire() }

    /// Gives a permit back. Throws `SyncError.overReleased` if every permit
    /// is already back.
    public func release() throws {
        if semaphore.value >= bound { throw SyncError.overReleased(bound: bound) }
        semaphore.release()
    }

    /// Runs `body` holding a permit; see `Semaphore.withPermit(_:)`.
    public func withPermit<R>(_ body: () throws -> R) throws -> R {
        try acquire()
        defer { semaphore.release() }
        return try body()
    }
}

/// Misuse of a lock or semaphore.
public enum SyncError: Error, Equatable, CustomStringConvertible {
    /// `BoundedSemaphore.release` with all of its `bound` permits free.
    case overReleased(bound: Int)
    /// `release` of a lock that is not held.
    case notLocked(String)
    /// `release` of an `RLock`, or `Condition.wait`/`notify`, by a
    /// greenlet that does not hold the lock (`owner` is "nobody" when no
    /// greenlet does).
    case notOwner(lock: String, owner: String, caller: String)

    /// What was misused, in a sentence.
    public var description: String {
        switch self {
        case .overReleased(let bound):
            return "BoundedSemaphore released more times than acquired (bound \(bound))"
        case .notLocked(let what):
            return "\(what) released while not held"
        case .notOwner(let lock, let owner, let caller):
            return "\(caller) does not hold the \(lock) (held by \(owner))"
        }
    }
}
