import Glibc
import Green
import GreenTLS

/// An HTTP/1.1 server on greenlets: each connection is a greenlet that
/// parses requests (keep-alive and pipelining included) and answers each
/// with `handler`'s response.
///
/// ```swift
/// let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 8080)) { request in
///     HTTPResponse(text: "Hello, World!")
/// }
/// try server.serveForever()
/// ```
///
/// Malformed requests get 400, requests over the limits 431 or 413, a
/// client that does not finish its headers within `headerTimeout` 408;
/// each then has its connection closed. A handler that throws produces
/// a 500. A client that resets its connection, or stops reading for
/// `writeTimeout`, ends only its connection, quietly. Connections waiting
/// for their next request are listed in `IdleConnections`: when the
/// process runs out of file descriptors, the longest-idle are closed so
/// that new clients are still accepted. `init(on:workers:...)` runs one hub per thread on `SO_REUSEPORT`
/// listeners (the handler must then be `@Sendable`; see `ServerThreads`).
public final class HTTPServer {
    /// A handler confined to the server's hub (one hub).
    public typealias Handler = (HTTPRequest) throws -> HTTPResponse
    /// A handler that runs on several hubs' threads.
    public typealias SendableHandler = @Sendable (HTTPRequest) throws -> HTTPResponse

    public struct Options: Sendable {
        public var limits = HTTPLimits()
        /// Seconds a client has to send a request's header section once it
        /// started one (408 after).
        public var headerTimeout = 10.0
        /// Seconds an idle keep-alive connection is kept.
        public var idleTimeout = 60.0
        /// Seconds a response write may wait for the client to read.
        public var writeTimeout = 30.0
        /// Connections handled at once per hub (nil: no limit).
        public var maxConnections: Int?
        /// Whether the kernel hands a connection over only once its first
        /// bytes arrived (`TCP_DEFER_ACCEPT`, for up to `headerTimeout`
        /// seconds; nginx's `deferred`): connections that never send take
        /// no descriptor and no greenlet meanwhile. HTTP clients speak
        /// first, so nothing changes for them.
        public var deferAccept = true
        /// How connection greenlets keep their stacks: `.compact` for very
        /// many mostly idle keep-alive connections (see `StackMode`).
        public var stackMode = StackMode.default
        /// HTTPS: a server context (`TLSContext.server(certificateFile:
        /// keyFile:)`); each connection's handshake must finish within
        /// `headerTimeout`. nil: plain HTTP.
        public var tls: TLSContext?

        public init() {}
    }

    private let single: StreamServer?
    private let threads: ServerThreads?
    /// Where the server listens.
    public let address: SocketAddress

    /// A server on the calling thread's hub.
    public init(on address: SocketAddress, options: Options = Options(), handler: @escaping Handler) throws {
        let s = try StreamServer(on: address, maxConnections: options.maxConnections,
                                 stackMode: options.stackMode) { conn, peer in
            try HTTPConnection(socket: conn, peer: peer, options: options, handler: handler).run()
        }
        try options.configure(s.listener)
        single = s
        threads = nil
        self.address = s.address
    }

    /// A server on `workers` threads, one hub each, with `SO_REUSEPORT`
    /// listeners on one address; it serves at once (no `start` needed).
    public init(on address: SocketAddress, workers: Int, options: Options = Options(),
                handler: @escaping SendableHandler) throws {
        let t = try ServerThreads.start(threads: workers, on: address, maxConnections: options.maxConnections,
                                        stackMode: options.stackMode,
                                        configureListener: options.configure) { conn, peer in
            try HTTPConnection(socket: conn, peer: peer, options: options, handler: handler).run()
        }
        threads = t
        single = nil
        self.address = t.address
    }

    /// Starts serving in the background (one hub: a greenlet on this hub;
    /// several: their threads are already serving).
    public func start() {
        single?.start()
    }

    /// Connections being handled now (one hub; nil with several).
    public var connectionCount: Int? { single?.connectionCount }

    /// Idle connections closed so far to go on accepting when the process
    /// ran out of file descriptors (one hub; nil with several).
    public var idleConnectionsClosed: Int? { single?.idleConnectionsClosed }

    /// Serves until `stop`.
    public func serveForever() throws {
        if let single { try single.serveForever() } else { try threads!.join() }
    }

    /// Stops accepting, lets requests in progress finish for up to
    /// `timeout` seconds, then closes the rest.
    public func stop(timeout: Double? = nil) throws {
        if let single { try single.stop(timeout: timeout) } else { try threads!.stop(timeout: timeout) }
    }
}

extension HTTPServer.Options {
    /// Sets the listening socket's options.
    func configure(_ listener: Socket) throws {
        guard deferAccept, listener.family == AF_INET || listener.family == AF_INET6 else { return }
        try listener.setOption(level: Int32(IPPROTO_TCP), name: TCP_DEFER_ACCEPT,
                               value: Int32(min(max(headerTimeout.rounded(.up), 1), 3600)))
    }
}

/// One server connection: read, parse, answer, until it closes.
final class HTTPConnection {
    let socket: Socket
    let peer: SocketAddress
    let options: HTTPServer.Options
    let handler: HTTPServer.Handler
    private let parser: HTTPMessageParser
    private let idleEntry: IdleConnections.Entry
    private var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    private var out: [UInt8] = []

    init(socket: Socket, peer: SocketAddress, options: HTTPServer.Options, handler: @escaping HTTPServer.Handler) {
        self.socket = socket
        self.peer = peer
        self.options = options
        self.handler = handler
        parser = HTTPMessageParser(.request, limits: options.limits)
        idleEntry = IdleConnections.Entry(socket)
        out.reserveCapacity(1024)
    }

    /// TLS on the socket, when the server has a context (set by `run`).
    private var tls: TLSSocket?
    private var transport: any HTTPTransport { tls ?? socket }

    func run() throws {
        try? socket.setNoDelay()
        if let context = options.tls {
            // A client that does not finish its handshake in time, or whose
            // handshake fails, ends only its connection.
            do {
                let t = try TLSSocket(server: socket, context: context)
                try t.handshake(timeout: options.headerTimeout)
                tls = t
            } catch is SocketError {
                return
            } catch is TLSError {
                return
            }
        }
        defer { tls?.shutdown(timeout: 0.1) }
        var messageStarted = 0.0
        var afterUpgrade: [UInt8] = []
        while true {
            var requests = parser.takeRequests()
            while requests.isEmpty {
                // Between requests the idle timeout applies; inside one,
                // the header section must arrive in time.
                let waitingForHeaders = parser.inMessage && !parser.headersComplete
                var timeout = options.idleTimeout
                if waitingForHeaders {
                    timeout = max(0.001, messageStarted + options.headerTimeout - Hub.current.nowUpdated())
                }
                let n: Int
                do {
                    n = try buffer.withUnsafeMutableBytes { buffer in
                        // Between messages the connection may be closed
                        // when the process runs out of descriptors.
                        if parser.inMessage { return try transport.recv(into: buffer, timeout: timeout) }
                        return try Hub.current.idleConnections.whileIdle(idleEntry) {
                            try transport.recv(into: buffer, timeout: timeout)
                        }
                    }
                } catch is TLSError {
                    return   // the client broke the TLS session
                } catch let e as SocketError {
                    if case .timedOut = e.reason, waitingForHeaders {
                        try? send(HTTPResponse(status: 408, text: "request header timeout\n"), keepAlive: false,
                                  head: false)
                    }
                    return
                }
                if n == 0 {
                    try? parser.finish()
                    return
                }
                let wasInMessage = parser.inMessage
                do {
                    let consumed = try buffer.withUnsafeBytes { try parser.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    // After a request to switch protocols, the rest is the
                    // new protocol's.
                    if parser.isUpgrade { afterUpgrade = Array(buffer[consumed..<n]) }
                } catch let e as HTTPParseError {
                    let status: Int
                    switch e.kind {
                    case .headersTooLarge, .tooManyHeaders: status = 431
                    case .bodyTooLarge: status = 413
                    case .targetTooLong: status = 414
                    case .malformed, .invalidRequest, .truncated: status = 400
                    }
                    try? send(HTTPResponse(status: status, text: "\(e)\n"), keepAlive: false, head: false)
                    return
                }
                requests = parser.takeRequests()
                // A message began in these bytes (and is not complete):
                // its header clock starts now.
                if parser.inMessage && (!wasInMessage || !requests.isEmpty) {
                    messageStarted = Hub.current.nowUpdated()
                }
            }
            for (i, var request) in requests.enumerated() {
                request.peer = peer
                var response: HTTPResponse
                do {
                    response = try handler(request)
                } catch {
                    response = HTTPResponse(status: 500, text: "internal server error\n")
                }
                if parser.isUpgrade && i == requests.count - 1 {
                    // The parser stopped: the connection ends with this
                    // response, or becomes the new protocol's.
                    guard response.status == 101, let upgrade = response.upgrade else {
                        try? send(response, keepAlive: false, head: request.method == "HEAD")
                        return
                    }
                    do { try send(response, keepAlive: true, head: false) } catch { return }
                    let upgraded = HTTPUpgradedConnection(request: request, socket: socket, tls: tls, buffered: afterUpgrade)
                    afterUpgrade = []
                    try? upgrade(upgraded)
                    return
                }
                let keepAlive = parser.keepAlive && !(request.headers["Connection"]?.caseInsensitiveEquals("close") ?? false)
                do {
                    try send(response, keepAlive: keepAlive, head: request.method == "HEAD")
                } catch is SocketError {
                    // The client reset the connection or stopped reading
                    // (write timeout): its loss, not the server's error.
                    return
                } catch is TLSError {
                    return
                }
                if !keepAlive { return }
            }
        }
    }


    /// Writes `response`: its headers, a Content-Length (or chunked
    /// framing when it streams), Date, and Connection: close when ending.
    private func send(_ response: HTTPResponse, keepAlive: Bool, head: Bool) throws {
        out.removeAll(keepingCapacity: true)
        append("HTTP/1.1 \(response.status) \(response.reason)\r\n")
        var hasLength = false, hasDate = false, hasConnection = false
        for (name, value) in response.headers {
            if name.caseInsensitiveEquals("Content-Length") { hasLength = true }
            if name.caseInsensitiveEquals("Date") { hasDate = true }
            if name.caseInsensitiveEquals("Connection") { hasConnection = true }
            append(name)
            append(": ")
            append(value)
            append("\r\n")
        }
        let streams = response.bodyWriter != nil
        if streams {
            append("Transfer-Encoding: chunked\r\n")
        } else if !hasLength && response.status != 204 && response.status != 304 && !(100..<200).contains(response.status) {
            append("Content-Length: \(response.body.count)\r\n")
        }
        if !hasDate { append("Date: \(HTTPDate.now())\r\n") }
        if !keepAlive && !hasConnection { append("Connection: close\r\n") }
        append("\r\n")
        if !head && !streams { out.append(contentsOf: response.body) }
        try transport.sendAll(out, timeout: options.writeTimeout)
        if let writer = response.bodyWriter, !head {
            try writer(HTTPBodyWriter(transport: transport, timeout: options.writeTimeout))
            try transport.sendAll("0\r\n\r\n", timeout: options.writeTimeout)
        }
    }

    private func append(_ s: String) {
        var s = s
        s.withUTF8 { out.append(contentsOf: $0) }
    }
}

/// Writes a streamed (chunked) response body, one chunk per `write`.
public struct HTTPBodyWriter {
    let transport: any HTTPTransport
    let timeout: Double

    /// Sends `bytes` as one chunk (nothing for an empty array, which would
    /// end the body).
    public func write(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        try transport.sendAll(String(bytes.count, radix: 16) + "\r\n", timeout: timeout)
        try transport.sendAll(bytes, timeout: timeout)
        try transport.sendAll("\r\n", timeout: timeout)
    }

    public func write(_ text: String) throws { try write(Array(text.utf8)) }
}

/// The Date header's value, formatted once per second.
enum HTTPDate {
    private struct Cache {
        var second = 0
        var text = ""
    }
    // Each thread formats its own: hubs are per thread.
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in p.map { Unmanaged<Box>.fromOpaque($0).release() } }
        return k
    }()

    private final class Box { var cache = Cache() }

    static func now() -> String {
        let box: Box
        if let p = pthread_getspecific(key) {
            box = Unmanaged<Box>.fromOpaque(p).takeUnretainedValue()
        } else {
            box = Box()
            pthread_setspecific(key, Unmanaged.passRetained(box).toOpaque())
        }
        var t = time(nil)
        if box.cache.second != t || box.cache.text.isEmpty {
            var tm = Glibc.tm()
            gmtime_r(&t, &tm)
            var buf = [CChar](repeating: 0, count: 64)
            let n = strftime(&buf, buf.count, "%a, %d %b %Y %H:%M:%S GMT", &tm)
            box.cache.text = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            box.cache.second = t
        }
        return box.cache.text
    }
}
