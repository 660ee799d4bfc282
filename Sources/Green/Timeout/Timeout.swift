import CLibev

/// Thrown at the blocking point of a greenlet whose `Timeout` expired.
/// `isFrom(_:)` tells which timeout it was, so nested timeouts never
/// mistake each other's expiry.
public struct TimeoutError: Error, CustomStringConvertible {
    /// The duration the expired timeout was started with.
    public let seconds: Double
    let source: ObjectIdentifier?

    init(seconds: Double, source: ObjectIdentifier?) {
        self.seconds = seconds
        self.source = source
    }

    /// Whether this error was raised by `timeout`.
    public func isFrom(_ timeout: Timeout) -> Bool { source == ObjectIdentifier(timeout) }

    /// "timed out after N s".
    public var description: String { "timed out after \(seconds) s" }
}

/// A deadline for the greenlet that starts it: when it expires, the
/// greenlet's current or next blocking call throws (`TimeoutError`, or the
/// error given at creation). Prefer `withTimeout`, which cancels for you.
///
/// ```swift
/// let t = Timeout(2.0)
/// t.start()
/// defer { t.cancel() }
/// try socket.recv(into: &buf)
/// ```
///
/// A timeout belongs to the greenlet that started it and to that thread.
/// Cancelling withdraws an expiry that has not been delivered yet.
public final class Timeout {
    // The timer is this object's memory; its `data` refers to the object
    // unretained, and it is stopped (`cancel`, at the latest in deinit)
    // before either goes.

    /// Seconds from `start()` to the expiry.
    public let seconds: Double
    private let customError: (any Error)?
    private let timer: UnsafeMutablePointer<ev_timer>
    private var hub: Hub?
    private var target: AnyGreenlet?
    private var sequence: UInt64 = 0
    private var shieldLevel = 0
    /// Whether the timeout has expired since it was last started.
    public private(set) var expired = false

    /// A timeout of `seconds`, not started. When it expires the greenlet
    /// gets `error`, or a `TimeoutError` that `isFrom(self)`.
    public init(_ seconds: Double, error: (any Error)? = nil) {
        self.seconds = seconds
        self.customError = error
        timer = .allocate(capacity: 1)
        timer.initialize(to: ev_timer())
    }

    deinit {
        cancel()
        timer.deallocate()
    }

    /// Whether the timer is running.
    public var isPending: Bool { hub.map { $0.isTimerPending(timer) } ?? false }

    /// Starts (or restarts) the timeout for the calling greenlet.
    public func start() {
        cancel()
        let hub = Hub.current
        let g = hub.current!
        self.hub = hub
        target = g
        expired = false
        sequence = hub.nextSequence()
        shieldLevel = g.shieldDepth
        green_ev_timer_init(timer, { _, w, _ in
            let t = Unmanaged<Timeout>.fromOpaque(w!.pointee.data).takeUnretainedValue()
            t.fire()
        }, max(0, seconds), 0)
        timer.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        hub.updateNow()
        hub.startTimer(timer, after: max(0, seconds))
    }

    /// Stops the timer and withdraws an expiry not yet delivered.
    public func cancel() {
        guard let hub else { return }
        hub.stopTimer(timer)
        if let target { hub.withdrawCancel(target, source: ObjectIdentifier(self)) }
        self.hub = nil
        target = nil
    }

    private func fire() {
        guard let hub, let target else { return }
        expired = true
        let error = customError ?? TimeoutError(seconds: seconds, source: ObjectIdentifier(self))
        hub.interrupt(target, cancel: AnyGreenlet.Interrupt(
            error: error, shieldLevel: shieldLevel, source: ObjectIdentifier(self), sequence: sequence))
    }
}

/// Runs `body` with a deadline of `seconds`: if it has not returned by
/// then, its current or next blocking call throws `TimeoutError`, which
/// propagates out of here. A timeout of an enclosing `withTimeout` passes
/// through unchanged.
@discardableResult
public func withTimeout<R>(_ seconds: Double, _ body: () throws -> R) throws -> R {
    let t = Timeout(seconds)
    t.start()
    defer { t.cancel() }
    return try body()
}

/// Runs `body` with a deadline of `seconds` and returns `fallback()` if
/// this deadline (and not an enclosing one) expires first. Rethrows what
/// `body` throws otherwise, an enclosing timeout's expiry and a kill
/// included.
public func withTimeout<R>(_ seconds: Double, otherwise fallback: () -> R,
                           _ body: () throws -> R) throws -> R {
    let t = Timeout(seconds)
    t.start()
    defer { t.cancel() }
    do {
        return try body()
    } catch let e as TimeoutError where e.isFrom(t) {
        return fallback()
    }
}

extension Hub {
    /// Runs `body` with a deadline; returns false if this deadline expired.
    func withDeadline(_ seconds: Double, _ body: () throws -> Void) throws -> Bool {
        try withTimeout(seconds, otherwise: { false }) {
            try body()
            return true
        }
    }
}
