// Waiting for a file descriptor, the primitive under every socket call.
//
// A greenlet that would block on an fd starts a libev io watcher kept in
// its context's wait record (`Hub.takeWaitRecord`), parks, and is made
// ready by the watcher's callback. The
// watcher is stopped before the call returns, whatever happens, so libev
// never holds a watcher whose memory is gone or whose fd was closed
// (invariant 4 in Hub.swift; the watcher holds its greenlet unretained,
// invariant 2). A `register`ed wait is reachable from its socket until
// `register(nil)`, in the same `defer`.
import CLibev
import Glibc

/// One greenlet's wait for an fd: the watcher, and how the wait ended.
struct FDWait {
    var watcher = ev_io()
    let greenlet: Unmanaged<AnyGreenlet>
    /// The fd became ready (the watcher fired).
    var fired = false
    /// The fd's owner closed it meanwhile (see `Socket.close`).
    var closed = false

    init(greenlet: AnyGreenlet) {
        self.greenlet = Unmanaged.passUnretained(greenlet)
    }
}

extension Hub {
    /// How a `waitIO` ended (other than by an interrupt, which it throws).
    enum IOWaitOutcome {
        case ready, timedOut, closed
    }

    /// Parks the calling greenlet until `fd` is ready for `events`
    /// (`EV_READ`, `EV_WRITE`), at most `timeout` seconds. `register` sees
    /// the wait before the greenlet parks (a socket keeps it so that
    /// closing can end it); the wait is over, and its memory gone, when
    /// this returns. Returns `.closed` if the owner ended the wait by
    /// closing; throws the interrupt if the greenlet is killed or an
    /// enclosing timeout expires. (The caller makes the errors, out of
    /// line: what this frame holds, a parked compact greenlet keeps.)
    func waitIO(fd: Int32, events: Int32, timeout: Double?, on what: StaticString,
                register: (UnsafeMutablePointer<FDWait>?) -> Void = { _ in }) throws -> IOWaitOutcome {
        let g: AnyGreenlet = current
        try checkpoint(g)
        // libev writes into the watcher, and `Socket.close` may end the
        // wait, while the greenlet is parked: not on its stack (a
        // compact greenlet's is not there then; see StackMode).
        let wait = takeWaitRecord(FDWait.self, for: g)
        wait.initialize(to: FDWait(greenlet: g))
        green_ev_io_init(&wait.pointee.watcher, { _, w, _ in
            let wait = w!.pointee.data.assumingMemoryBound(to: FDWait.self)
            wait.pointee.fired = true
            wait.pointee.greenlet._withUnsafeGuaranteedRef { $0.hub.ready($0) }
        }, fd, events)
        wait.pointee.watcher.data = UnsafeMutableRawPointer(wait)
        ev_io_start(loop, &wait.pointee.watcher)
        fdWatches += 1
        register(wait)
        // The world outside wakes this wait: a virtual clock holds.
        externalWaits += 1
        defer {
            externalWaits -= 1
            register(nil)
            ev_io_stop(loop, &wait.pointee.watcher)
            fdWatches -= 1
            wait.deinitialize(count: 1)
            releaseWaitRecord(wait, of: g)
        }
        let block = {
            while !wait.pointee.fired && !wait.pointee.closed {
                try self.park(g, on: what)
            }
        }
        let inTime: Bool
        if let timeout {
            inTime = try withDeadline(timeout, block)
        } else {
            try block()
            inTime = true
        }
        if wait.pointee.closed { return .closed }
        return inTime ? .ready : .timedOut
    }

    /// Ends a wait registered by `waitIO` because its fd is being closed:
    /// stops the watcher (before the fd goes) and wakes the greenlet, whose
    /// `waitIO` then throws.
    func endIOWait(_ wait: UnsafeMutablePointer<FDWait>) {
        ev_io_stop(loop, &wait.pointee.watcher)
        wait.pointee.closed = true
        wait.pointee.greenlet._withUnsafeGuaranteedRef { ready($0) }
    }
}

/// Waits until `fd` can be read without blocking, at most `timeout`
/// seconds; returns false on timeout. Blocks only the calling greenlet:
/// the way to make any fd-based library cooperative. Throws if the
/// greenlet is killed or an enclosing timeout expires.
@discardableResult
public func waitReadable(fd: Int32, timeout: Double? = nil) throws -> Bool {
    try waitReady(fd: fd, events: Int32(EV_READ), timeout: timeout, operation: "waitReadable")
}

/// Waits until `fd` can be written without blocking; see `waitReadable`.
@discardableResult
public func waitWritable(fd: Int32, timeout: Double? = nil) throws -> Bool {
    try waitReady(fd: fd, events: Int32(EV_WRITE), timeout: timeout, operation: "waitWritable")
}

/// `waitReadable` and `waitWritable`: true when ready, false on timeout;
/// a closed fd throws a `SocketError` naming `operation`. Inlined, so
/// that a parked greenlet's stack holds no more frames than before.
@inline(__always)
private func waitReady(fd: Int32, events: Int32, timeout: Double?, operation: StaticString) throws -> Bool {
    switch try Hub.current.waitIO(fd: fd, events: events, timeout: timeout, on: operation) {
    case .ready: return true
    case .timedOut: return false
    case .closed: throw SocketError(operation: "\(operation)", reason: .closed)
    }
}
