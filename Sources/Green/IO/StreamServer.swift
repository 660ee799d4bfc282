import Glibc

/// A TCP (or Unix stream) server, like gevent's `StreamServer`: it accepts
/// connections and runs `handler` for each in its own greenlet; the
/// connection is closed when the handler returns or throws.
///
/// ```swift
/// let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 8080)) { conn, peer in
///     while case let data = try conn.recv(), !data.isEmpty { try conn.sendAll(data) }
/// }
/// try server.serveForever()
/// ```
///
/// With `maxConnections`, handlers run in a `Pool` of that size and the
/// server stops accepting while it is full (the kernel's backlog queues the
/// rest). When the process runs out of file descriptors (EMFILE, ENFILE)
/// the accept loop closes the hub's longest-idle connections (those whose
/// handlers wait for the peer inside `IdleConnections.whileIdle`, as
/// `HTTPServer`'s do between requests) and accepts again; with none idle
/// it backs off and retries instead of spinning or dying.
/// A handler's error is reported like any greenlet's (once, on stderr by
/// default) and ends only that connection. Confined to the thread that
/// made it.
public final class StreamServer {
    /// The listening socket.
    public let listener: Socket
    private let handler: (Socket, SocketAddress) throws -> Void
    /// The connection handlers.
    public let handlers: Group
    private var acceptor: Greenlet<Void>?
    private var stopping = false
    /// Times the accept loop found no file descriptor left.
    public private(set) var descriptorExhaustions = 0
    /// Idle connections it closed to go on accepting (see `IdleConnections`).
    public private(set) var idleConnectionsClosed = 0
    /// Connections being handled now.
    public var connectionCount: Int { handlers.count }

    /// A server on `address`. `maxConnections` caps concurrent handlers;
    /// `reusePort` lets several servers (one per thread) share the address;
    /// `stackMode` is how handlers keep their stacks (`.compact` for very
    /// many mostly idle connections; see `StackMode`). It listens at once
    /// and serves once started (`start`, `serveForever`). Never blocks;
    /// throws `SocketError` if the address cannot be bound or listened on.
    public init(on address: SocketAddress, maxConnections: Int? = nil, reusePort: Bool = false,
                backlog: Int32 = 1024, stackMode: StackMode = .default,
                handler: @escaping (Socket, SocketAddress) throws -> Void) throws {
        listener = try Socket.listen(on: address, backlog: backlog, reusePort: reusePort)
        self.address = listener.localAddress ?? address
        handlers = maxConnections.map { Pool(size: $0, stackMode: stackMode) } ?? Group(stackMode: stackMode)
        self.handler = handler
    }

    /// A server on an already listening socket (of this thread). Never
    /// blocks.
    public init(listener: Socket, maxConnections: Int? = nil, stackMode: StackMode = .default,
                handler: @escaping (Socket, SocketAddress) throws -> Void) {
        self.listener = listener
        address = listener.localAddress ?? (try! SocketAddress(ip: "0.0.0.0", port: 0))
        handlers = maxConnections.map { Pool(size: $0, stackMode: stackMode) } ?? Group(stackMode: stackMode)
        self.handler = handler
    }

    /// Where the server listens (with the real port when bound to port 0).
    public let address: SocketAddress

    /// Whether the accept loop runs.
    public var isServing: Bool { acceptor.map { !$0.isReady } ?? false }

    /// Starts the accept loop in its own greenlet and returns; a second
    /// call does nothing.
    public func start() {
        guard acceptor == nil else { return }
        acceptor = spawn(name: "StreamServer \(address)") { [self] in try acceptLoop() }
    }

    /// Starts (if needed) and waits until the server is stopped, blocking
    /// only the calling greenlet. Throws what ended the accept loop, if it
    /// was not `stop` (a `SocketError` of `accept`), or the interrupt when
    /// the greenlet is killed or an enclosing timeout expires.
    public func serveForever() throws {
        start()
        try acceptor!.get()
    }

    /// Stops accepting, waits up to `timeout` seconds (forever if nil) for
    /// the connections in progress to finish, then kills those left.
    /// Returns whether all finished on their own. Blocks only the calling
    /// greenlet; throws the interrupt when it is killed or an enclosing
    /// timeout expires.
    @discardableResult
    public func stop(timeout: Double? = nil) throws -> Bool {
        stopping = true
        listener.close()
        if let acceptor { try acceptor.join() }
        // A handler may stop its own server: it does not wait for itself.
        return try handlers.drain(timeout: timeout)
    }

    @inline(never)
    private static func endedByClose(_ error: any Error, _ socket: Socket) -> Bool {
        guard let e = error as? SocketError else { return false }
        return e.reason == .closed && socket.isClosed
    }

    private func acceptLoop() throws {
        var backoff = 0.001
        while !stopping {
            // In a pool, wait for a free slot before taking a connection,
            // so that the backlog, not this process, holds the excess.
            try handlers.waitAvailable()
            let connection: (Socket, SocketAddress)
            do {
                connection = try listener.accept()
                backoff = 0.001
            } catch let e as SocketError {
                if stopping || e.reason == .closed { return }
                if e.errno == EMFILE || e.errno == ENFILE || e.errno == ENOBUFS || e.errno == ENOMEM {
                    descriptorExhaustions += 1
                    // Out of descriptors or memory: close the connections
                    // that have waited longest for their peers (a few at
                    // a time, so that a storm costs one failed accept per
                    // batch) and accept again at once; with none idle, let
                    // handlers finish and free some, then try again.
                    let idle = Hub.current.idleConnections
                    let closed = idle.closeLongestIdle(max(1, idle.count / 16))
                    if closed > 0 {
                        idleConnectionsClosed += closed
                        continue
                    }
                    try Green.sleep(backoff)
                    backoff = min(backoff * 2, 0.5)
                    continue
                }
                throw e
            }
            let (socket, peer) = connection
            let handler = self.handler
            try handlers.spawn(name: "connection \(peer)") {
                defer { socket.close() }
                do {
                    try handler(socket, peer)
                } catch {
                    // Closed while idle to free its descriptor (or by the
                    // handler itself): the connection's end, not a failure.
                    // (Tested out of line: this frame stays small, and a
                    // parked compact greenlet keeps what it holds.)
                    if !StreamServer.endedByClose(error, socket) { throw error }
                }
            }
        }
    }
}
