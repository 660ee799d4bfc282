/// An OS thread that runs a hub and nothing else: greenlets reach it
/// through its `handle` from any thread (async code included). The hub
/// waits for work while idle, without being reported deadlocked. The
/// object is `Sendable`: any thread may start, stop or join it.
///
/// ```swift
/// let green = try HubThread.start(name: "green")
/// let page = try await green.handle.run { try fetch(url) }   // from async code
/// green.stop()
/// ```
public final class HubThread: Sendable {
    /// Reaches the thread's hub.
    public let handle: HubHandle
    private let stopped: AsyncResult<Bool>
    private let exited: AsyncResult<Bool>

    private init(handle: HubHandle, stopped: AsyncResult<Bool>, exited: AsyncResult<Bool>) {
        self.handle = handle
        self.stopped = stopped
        self.exited = exited
    }

    /// Starts the thread and returns once its hub runs. Waits
    /// cooperatively when called from a greenlet (a plain thread waits in
    /// its hub's main greenlet). Throws `GreenError.threadStartFailed` if
    /// the system refuses the thread, or the interrupt when the caller is
    /// killed or an enclosing timeout expires.
    public static func start(name: String = "hub-thread") throws -> HubThread {
        let ready = AsyncResult<HubHandle>()
        let stopped = AsyncResult<Bool>()
        let exited = AsyncResult<Bool>()
        let started = OSThread.start {
            let hub = Hub.current
            hub.mainGreenlet.name = name
            ready.set(hub.handle)
            // Parked until `stop`: the wait counts as a live wake-up source
            // (another thread will set it), so posts are served meanwhile.
            _ = try? stopped.get()
            // Let greenlets spawned there finish their current turn.
            try? Green.sleep(0)
            exited.set(true)
        }
        guard started else { throw GreenError.threadStartFailed }
        return HubThread(handle: try ready.get(), stopped: stopped, exited: exited)
    }

    /// Asks the thread to end once its main greenlet next runs; greenlets
    /// still parked there are abandoned, as at any thread's exit. Any
    /// thread; does not wait (see `join`).
    public func stop() {
        stopped.set(true)
    }

    /// Waits until the thread has ended (after `stop`), at most `timeout`
    /// seconds; returns whether it has. Blocks only the calling greenlet;
    /// throws the interrupt when it is killed or an enclosing timeout
    /// expires.
    @discardableResult
    public func join(timeout: Double? = nil) throws -> Bool {
        try exited.wait(timeout: timeout)
    }
}
