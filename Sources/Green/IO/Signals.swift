import CLibev
import Glibc

/// Runs a handler in a new greenlet each time a signal arrives, like
/// gevent's `signal_handler`: the handler may block (it is an ordinary
/// greenlet), and the signal is taken from the hub's libev loop, not from
/// an async-signal context. Confined to the thread that made it; one
/// handler per signal per process at a time. `cancel()` (or releasing it)
/// restores nothing but stops handling: the signal then gets the default
/// behaviour libev leaves (its previous disposition is not restored).
///
/// ```swift
/// let onHup = SignalHandler(SIGHUP) { try reloadConfig() }
/// ```
public final class SignalHandler {
    // The watcher is this object's memory; its `data` refers to the object
    // unretained, and it is stopped (`cancel`, at the latest in deinit)
    // before either goes. Its callback runs inside `hub`'s loop.

    /// The signal number.
    public let signal: Int32
    private let handler: () throws -> Void
    private let watcher: UnsafeMutablePointer<ev_signal>
    private let hub: Hub
    /// How many times the signal has arrived.
    public private(set) var count = 0

    /// Starts handling `signal` on the calling thread's hub: each arrival
    /// spawns a greenlet that runs `handler` (an error it throws is
    /// reported as any greenlet's, see `UnhandledErrorReporter`). Never
    /// blocks.
    public init(_ signal: Int32, _ handler: @escaping () throws -> Void) {
        self.signal = signal
        self.handler = handler
        hub = Hub.current
        watcher = .allocate(capacity: 1)
        watcher.initialize(to: ev_signal())
        green_ev_signal_init(watcher, { _, w, _ in
            Unmanaged<SignalHandler>.fromOpaque(w!.pointee.data).takeUnretainedValue().fired()
        }, signal)
        watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        // An active handler counts as a live wake-up source: greenlets
        // that all wait for a signal are not reported deadlocked.
        ev_signal_start(hub.loop, watcher)
        // A signal comes from outside: a virtual clock holds while it may.
        hub.externalWaits += 1
    }

    deinit {
        cancel()
        watcher.deallocate()
    }

    /// Whether the handler still runs on the signal.
    public var isActive: Bool { green_ev_is_active(watcher) != 0 }

    /// Stops handling the signal; handlers already spawned run on. Never
    /// blocks; calling it twice does nothing.
    public func cancel() {
        guard green_ev_is_active(watcher) != 0 else { return }
        ev_signal_stop(hub.loop, watcher)
        hub.externalWaits -= 1
    }

    private func fired() {
        count += 1
        let handler = self.handler
        // In the loop: spawning only queues the greenlet.
        spawn(name: "signal \(signal) handler") { try handler() }
    }
}

/// Waits until `signal` arrives, at most `timeout` seconds; returns
/// whether it did. Blocks only the calling greenlet; throws the interrupt
/// when it is killed or an enclosing timeout expires. Uses a
/// `SignalHandler` on the calling thread for the wait.
@discardableResult
public func waitForSignal(_ signal: Int32, timeout: Double? = nil) throws -> Bool {
    let arrived = Event()
    let handler = SignalHandler(signal) { arrived.set() }
    defer { handler.cancel() }
    return try arrived.wait(timeout: timeout)
}
