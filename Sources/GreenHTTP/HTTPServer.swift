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
///
/// The server object is confined to the thread that made it; with one
/// hub, so are its handlers, which run on that hub's greenlets. Its calls
/// that wait (`serveForever`, `stop`) block only the calling greenlet and
/// throw the interrupt when it is killed or an enclosing timeout expires.
public final class HTTPServer {
    /// A handler confined to the server's hub (one hub).
    public typealias Handler = (HTTPRequest) throws -> HTTPResponse
    /// A handler that runs on several hubs' threads.
    public typealias SendableHandler = @Sendable (HTTPRequest) throws -> HTTPResponse
    /// A handler that reads the request's body as it arrives: it gets the
    /// request's head (`body` empty) at once and the body as a stream
    /// (uploads of any size in constant memory; `limits.maxBodyBytes`
    /// does not apply to what streams). See `HTTPRequestBodyStream`.
    public typealias StreamingHandler = (HTTPRequest, HTTPRequestBodyStream) throws -> HTTPResponse
    /// A streaming handler that runs on several hubs' threads.
    public typealias SendableStreamingHandler = @Sendable (HTTPRequest, HTTPRequestBodyStream) throws -> HTTPResponse

    /// Limits and timeouts of a server; fixed when the server is made.
    /// A value: any thread may make one.
    public struct Options: Sendable {
        /// Limits on requests: over `maxHeaderBytes` or `maxHeaderCount`
        /// a 431, over `maxBodyBytes` (for a body read whole) a 413.
        public var limits = HTTPLimits()
        /// Seconds a client has to send a request's header section once it
        /// started one (408 after).
        public var headerTimeout = 10.0
        /// Seconds an idle keep-alive connection is kept.
        public var idleTimeout = 60.0
        /// Seconds a response write may wait for the client to read.
        public var writeTimeout = 30.0
        /// Seconds a read of a streamed request body may wait for the
        /// client to send more.
        public var bodyReadTimeout = 30.0
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
        /// Whether the server answers `GET /debug/greenlets` itself, as Go's
        /// net/http/pprof does: the grouped greenlet dump of the process
        /// (`GreenletDump`) as text, `?format=json` for JSON, `?full=1`
        /// for every greenlet with its whole backtrace. The handler never
        /// sees those requests. Off by default; on, it answers clients on
        /// a loopback address only (403 to others) unless
        /// `debugEndpointsFromAnyAddress`.
        public var debugEndpoints = false
        /// Lets clients on any address use the debug endpoints (they show
        /// the program's code paths and greenlet names: keep it off on a
        /// public address).
        public var debugEndpointsFromAnyAddress = false

        /// The defaults above; change the fields you need.
        public init() {}
    }

    private let single: StreamServer?
    private let threads: ServerThreads?
    /// Where the server listens.
    public let address: SocketAddress

    /// A server on the calling thread's hub, listening on `address` at
    /// once; it serves once started (`start`, `serveForever`). Never
    /// blocks. Throws `SocketError` if the address cannot be bound or
    /// listened on.
    public convenience init(on address: SocketAddress, options: Options = Options(), handler: @escaping Handler) throws {
        try self.init(on: address, options: options, handling: .whole(handler))
    }

    /// A server on the calling thread's hub whose handler reads request
    /// bodies as they arrive; otherwise as `init(on:options:handler:)`.
    public convenience init(on address: SocketAddress, options: Options = Options(),
                            streamingHandler: @escaping StreamingHandler) throws {
        try self.init(on: address, options: options, handling: .streaming(streamingHandler))
    }

    private init(on address: SocketAddress, options: Options, handling: HTTPConnection.Handling) throws {
        let s = try StreamServer(on: address, maxConnections: options.maxConnections,
                                 stackMode: options.stackMode) { conn, peer in
            try HTTPConnection(socket: conn, peer: peer, options: options, handling: handling).run()
        }
        try options.configure(s.listener)
        single = s
        threads = nil
        self.address = s.address
    }

    /// A server on `workers` threads, one hub each, with `SO_REUSEPORT`
    /// listeners on one address; it serves at once (no `start` needed).
    /// Waits, blocking only the calling greenlet, until every thread's hub
    /// runs. Throws `SocketError` if an address cannot be bound, the
    /// error of starting a thread, or the interrupt.
    public convenience init(on address: SocketAddress, workers: Int, options: Options = Options(),
                            handler: @escaping SendableHandler) throws {
        try self.init(on: address, workers: workers, options: options) { .whole(handler) }
    }

    /// A streaming server on `workers` threads (see `init(on:workers:options:handler:)`).
    public convenience init(on address: SocketAddress, workers: Int, options: Options = Options(),
                            streamingHandler: @escaping SendableStreamingHandler) throws {
        try self.init(on: address, workers: workers, options: options) { .streaming(streamingHandler) }
    }

    private init(on address: SocketAddress, workers: Int, options: Options,
                 handling: @escaping @Sendable () -> HTTPConnection.Handling) throws {
        let t = try ServerThreads.start(threads: workers, on: address, maxConnections: options.maxConnections,
                                        stackMode: options.stackMode,
                                        configureListener: options.configure) { conn, peer in
            try HTTPConnection(socket: conn, peer: peer, options: options, handling: handling()).run()
        }
        threads = t
        single = nil
        self.address = t.address
    }

    /// Starts serving in the background (one hub: a greenlet on this hub;
    /// several: their threads are already serving). Never blocks; a
    /// second call does nothing.
    public func start() {
        single?.start()
    }

    /// Connections being handled now (one hub; nil with several).
    public var connectionCount: Int? { single?.connectionCount }

    /// Idle connections closed so far to go on accepting when the process
    /// ran out of file descriptors (one hub; nil with several).
    public var idleConnectionsClosed: Int? { single?.idleConnectionsClosed }

    /// Starts serving if needed and waits until `stop`, blocking only the
    /// calling greenlet. Throws the interrupt, or, on one hub, what ended
    /// the accept loop if not `stop` (a `SocketError` of `accept`; with
    /// several, see `ServerThreads.join()`).
    public func serveForever() throws {
        if let single { try single.serveForever() } else { try threads!.join() }
    }

    /// Stops accepting, lets requests in progress finish for up to
    /// `timeout` seconds (nil: as long as they take), then kills the
    /// connections left. Blocks only the calling greenlet; throws the
    /// interrupt.
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
