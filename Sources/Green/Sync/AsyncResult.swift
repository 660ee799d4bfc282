
/// A value or an error that arrives once, possibly from another OS thread,
/// like gevent's `AsyncResult`. Greenlets (on any hub) wait for it with
/// `get` or `wait`; any thread may `set` or `fail` it, and the waiting
/// greenlets are woken through their hub's cross-thread wake-up. A plain
/// OS thread that calls `get` gets a hub and waits in its main greenlet.
///
/// ```swift
/// let result = AsyncResult<Int>()
/// Thread { result.set(expensive()) }.start()
/// let n = try result.get(timeout: 5)
/// ```
public final class AsyncResult<Value: Sendable>: Sendable {
    private struct State {
        var outcome: Result<Value, any Error>?
        var waiters: [RemoteWaiter] = []
    }

    private let state = Locked(State())

    /// A result that has not arrived. Any thread.
    public init() {}

    /// Greenlets (or threads) waiting for it now. For tests that must
    /// know a waiter is there before they set the result.
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Whether a value or an error has arrived.
    public var isReady: Bool { state.withLock { $0.outcome != nil } }

    /// The value, if one has arrived; never waits.
    public var value: Value? {
        state.withLock { s in
            if case .success(let v)? = s.outcome { return v }
            return nil
        }
    }

    /// The error, if one has arrived; never waits.
    public var error: (any Error)? {
        state.withLock { s in
            if case .failure(let e)? = s.outcome { return e }
            return nil
        }
    }

    /// Stores `value` and wakes every waiter. Only the first `set` or
    /// `fail` counts; later ones return false. Any thread; never blocks.
    @discardableResult
    public func set(_ value: Value) -> Bool { complete(.success(value)) }

    /// Stores `error` for every waiter's `get` to throw. Only the first
    /// `set` or `fail` counts. Any thread; never blocks.
    @discardableResult
    public func fail(_ error: any Error) -> Bool { complete(.failure(error)) }

    private func complete(_ outcome: Result<Value, any Error>) -> Bool {
        let waiters: [RemoteWaiter]? = state.withLock { s in
            guard s.outcome == nil else { return nil }
            s.outcome = outcome
            let w = s.waiters
            s.waiters = []
            return w
        }
        guard let waiters else { return false }
        for w in waiters { w.wake() }
        return true
    }

    /// Waits until the result arrives, at most `timeout` seconds; returns
    /// whether it has. Throws if the calling greenlet is killed or an
    /// enclosing timeout expires.
    @discardableResult
    public func wait(timeout: Double? = nil) throws -> Bool {
        if isReady { return true }
        let hub = Hub.current
        let me: AnyGreenlet = hub.current
        let waiter = RemoteWaiter(hub: hub, greenlet: me)
        defer {
            waiter.end()
            state.withLock { s in s.waiters.removeAll { $0 === waiter } }
        }
        let registered = state.withLock { s -> Bool in
            guard s.outcome == nil else { return false }
            s.waiters.append(waiter)
            return true
        }
        guard registered else { return true }
        let block = {
            while !self.isReady { try hub.park(me, on: "AsyncResult.wait") }
        }
        if let timeout {
            return try hub.withDeadline(timeout, block)
        }
        try block()
        return true
    }

    /// Waits for the result and returns the value or throws the error.
    /// With `timeout`, throws `TimeoutError` if nothing arrived in time.
    /// The wait blocks only the calling greenlet and throws as `wait`
    /// does.
    public func get(timeout: Double? = nil) throws -> Value {
        if try !wait(timeout: timeout) { throw TimeoutError(seconds: timeout ?? 0, source: nil) }
        return try state.withLock { $0.outcome! }.get()
    }
}
