/// A UDP (or Unix datagram) server, like gevent's `DatagramServer`: each
/// datagram is handed to `handler` with its sender's address, in a new
/// greenlet, with the server's socket to answer on.
///
/// ```swift
/// let server = try DatagramServer(on: address) { data, sender, socket in
///     try socket.sendTo(data, address: sender)      // echo
/// }
/// server.start()
/// ```
///
/// With `maxConcurrent`, handlers run in a `Pool` of that size and the
/// server stops reading while it is full (the kernel's receive buffer
/// queues datagrams, and drops them when full, as UDP does). Confined to
/// the thread that made it.
public final class DatagramServer {
    /// The bound datagram socket the server reads and handlers answer on.
    public let socket: Socket
    /// Where the server listens (with the real port when bound to port 0).
    public let address: SocketAddress
    private let handler: ([UInt8], SocketAddress, Socket) throws -> Void
    /// The handlers in progress.
    public let handlers: Group
    private var receiver: Greenlet<Void>?
    private var stopping = false

    /// A server bound to `address`; it reads once started (`start`,
    /// `serveForever`). `maxConcurrent` caps the handlers running at once.
    /// Never blocks. Throws `SocketError` if the socket cannot be made or
    /// bound.
    public init(on address: SocketAddress, maxConcurrent: Int? = nil,
                handler: @escaping ([UInt8], SocketAddress, Socket) throws -> Void) throws {
        socket = try Socket(family: address.family, type: .datagram)
        do {
            try socket.bind(to: address)
        } catch {
            socket.close()
            throw error
        }
        self.address = socket.localAddress ?? address
        handlers = maxConcurrent.map { Pool(size: $0) } ?? Group()
        self.handler = handler
    }

    /// Whether the receive loop runs.
    public var isServing: Bool { receiver.map { !$0.isReady } ?? false }

    /// Starts the receive loop in its own greenlet and returns; a second
    /// call does nothing.
    public func start() {
        guard receiver == nil else { return }
        receiver = spawn(name: "DatagramServer \(address)") { [self] in
            while !stopping {
                try handlers.waitAvailable()
                let datagram: ([UInt8], SocketAddress)
                do {
                    datagram = try socket.recvFrom()
                } catch let e as SocketError where e.reason == .closed {
                    return
                }
                let (data, sender) = datagram
                let (handler, socket) = (self.handler, self.socket)
                try handlers.spawn { try handler(data, sender, socket) }
            }
        }
    }

    /// Starts (if needed) and waits until the server is stopped, blocking
    /// only the calling greenlet. Throws what ended the receive loop, if
    /// not `stop` (a `SocketError` of the socket), or the interrupt when
    /// the greenlet is killed or an enclosing timeout expires.
    public func serveForever() throws {
        start()
        try receiver!.get()
    }

    /// Stops reading, waits up to `timeout` seconds for handlers in
    /// progress, kills those left, and closes the socket. Returns whether
    /// all finished on their own. Blocks only the calling greenlet; throws
    /// the interrupt when it is killed or an enclosing timeout expires.
    @discardableResult
    public func stop(timeout: Double? = nil) throws -> Bool {
        stopping = true
        if let receiver, !receiver.isReady { try receiver.kill() }
        defer { socket.close() }
        return try handlers.drain(timeout: timeout)
    }
}
