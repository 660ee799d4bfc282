import Glibc
import Synchronization

/// A stream server on several OS threads, one hub each, for more than one
/// core: every thread has its own listener on the same address
/// (`SO_REUSEPORT`, so the kernel spreads connections across them) and
/// runs a `StreamServer` on it. gevent is held to one core by the GIL;
/// greenlets on different hubs run in parallel.
///
/// ```swift
/// let servers = try ServerThreads.start(threads: 2, on: address) { conn, peer in ... }
/// try servers.join()          // until stop()
/// ```
///
/// The handler runs on whichever thread accepted the connection, so it
/// must be `@Sendable`: share nothing between threads but `Sendable`
/// values (an `AsyncResult`, atomics, a `Mutex`). The object is
/// `Sendable`: any thread may stop or join it. Its waits block only the
/// calling greenlet (a plain thread waits in its hub's main greenlet) and
/// throw the interrupt when it is killed or an enclosing timeout expires.
public final class ServerThreads: Sendable {
    /// The address every thread listens on (the real port when bound to 0).
    public let address: SocketAddress
    private let threads: [HubThread]
    private let servers: [ServerBox]

    /// The `StreamServer` of one thread. `@unchecked Sendable`: `server`
    /// is set and read only in greenlets spawned on that thread's hub (by
    /// `start` and `stop`); `ended` is Sendable.
    final class ServerBox: @unchecked Sendable {
        var server: StreamServer?
        /// Set when the server stopped: empty, or failed with the error
        /// that ended its accept loop.
        let ended = AsyncResult<Void>()
    }

    private init(address: SocketAddress, threads: [HubThread], servers: [ServerBox]) {
        self.address = address
        self.threads = threads
        self.servers = servers
    }

    /// Starts `threads` threads serving `address`. `maxConnections` caps
    /// each thread's handlers, `stackMode` is how they keep their stacks;
    /// `configureListener` may set options on each listening socket before
    /// it serves. Returns once every thread's hub runs. Throws
    /// `SocketError` if an address cannot be bound, what
    /// `configureListener` throws, `GreenError.threadStartFailed`, or the
    /// interrupt; nothing is left listening or running then.
    public static func start(threads count: Int, on address: SocketAddress, maxConnections: Int? = nil,
                             stackMode: StackMode = .default,
                             configureListener: ((Socket) throws -> Void)? = nil,
                             handler: @escaping @Sendable (Socket, SocketAddress) throws -> Void) throws -> ServerThreads {
        try start(threads: count, on: address, maxConnections: maxConnections, stackMode: stackMode,
                  configureListener: configureListener, startThread: { try HubThread.start(name: "server-\($0)") },
                  handler: handler)
    }

    /// `start`, with the way a thread is started given (a test makes the
    /// second one fail).
    static func start(threads count: Int, on address: SocketAddress, maxConnections: Int?, stackMode: StackMode,
                      configureListener: ((Socket) throws -> Void)?, startThread: (Int) throws -> HubThread,
                      handler: @escaping @Sendable (Socket, SocketAddress) throws -> Void) throws -> ServerThreads {
        precondition(count >= 1, "ServerThreads.start needs at least one thread")
        // Bind every listener here, so that port 0 becomes one real port
        // shared by all, and a bind error is thrown to the caller.
        var listeners: [Socket] = []
        var bound = address
        do {
            for _ in 0..<count {
                let s = try Socket.listen(on: bound, reusePort: true)
                listeners.append(s)
                if bound.port == 0, let local = s.localAddress { bound = local }
                try configureListener?(s)
            }
        } catch {
            for s in listeners { s.close() }
            throw error
        }
        var hubThreads: [HubThread] = []
        var boxes: [ServerBox] = []
        do {
            for (i, listener) in listeners.enumerated() {
                let thread = try startThread(i)
                let box = ServerBox()
                let transfer = SocketTransfer(listener)
                thread.handle.spawn(name: "server-\(i) main") {
                    let server = StreamServer(listener: transfer.socket, maxConnections: maxConnections,
                                              stackMode: stackMode, handler: handler)
                    box.server = server
                    do {
                        try server.serveForever()
                        box.ended.set(())
                    } catch {
                        // The accept loop failed: take no more, let the
                        // connections in progress finish, then report it
                        // (join and stop throw it).
                        defer { box.ended.fail(error) }
                        try server.stop()
                    }
                }
                hubThreads.append(thread)
                boxes.append(box)
            }
        } catch {
            // Undo what started: the listeners not handed over yet, and
            // the threads serving the others.
            for listener in listeners.dropFirst(hubThreads.count) { listener.close() }
            let started = ServerThreads(address: bound, threads: hubThreads, servers: boxes)
            try started.stop(timeout: 0)
            throw error
        }
        return ServerThreads(address: bound, threads: hubThreads, servers: boxes)
    }

    /// Stops every thread's server (see `StreamServer.stop`), waits for
    /// them, and ends the threads. Waits cooperatively in a greenlet.
    /// Throws the interrupt, or then the error that had ended a thread's
    /// server before (as `join()`).
    public func stop(timeout: Double? = nil) throws {
        for (thread, box) in zip(threads, servers) {
            thread.handle.spawn { _ = try box.server?.stop(timeout: timeout) }
        }
        try join()
    }

    /// Waits until every thread's server has stopped, then ends the
    /// threads. Throws the interrupt; or, once all have stopped, the
    /// error that ended the first thread's server that ended on one (a
    /// `SocketError` of `accept`), as `StreamServer.serveForever` does on
    /// one hub.
    public func join() throws {
        for box in servers { try box.ended.wait() }
        for thread in threads {
            thread.stop()
            _ = try thread.join()
        }
        if let error = servers.lazy.compactMap({ $0.ended.error }).first { throw error }
    }
}

/// Moves a socket made on one thread to the thread that will use it.
/// `@unchecked Sendable`: the maker never touches it again after handing
/// it over, so one thread at a time uses it (a `Socket` has no
/// thread-bound state until it waits, which only the new owner does).
struct SocketTransfer: @unchecked Sendable {
    let socket: Socket
    init(_ socket: Socket) { self.socket = socket }
}
