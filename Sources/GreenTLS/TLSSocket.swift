import COpenSSL
import Glibc
import Green

/// TLS over a connected `Socket`, cooperative like the socket itself:
/// OpenSSL runs on the non-blocking fd, and when it wants to read or write
/// (`SSL_ERROR_WANT_READ`/`WANT_WRITE`) the greenlet waits for the fd, so a
/// slow peer blocks only its own greenlet. Timeouts and kill reach a
/// greenlet in a handshake, a read or a write, as with any socket call.
///
/// ```swift
/// let context = try TLSContext.client()                       // system trust store
/// let tls = try TLSSocket.connect(host: "example.org", port: 443, context: context, timeout: 10)
/// try tls.sendAll(Array("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n".utf8))
/// let reply = try tls.recv()
/// ```
///
/// Every call that waits (`connect`, `handshake`, `recv`, `sendAll`,
/// `shutdown`) blocks only the calling greenlet, at most its `timeout`
/// (nil: the socket's `timeout`, and if that is nil, none). The throwing
/// ones throw `TLSError` for what TLS reports, `SocketError` for the
/// socket (`.timedOut`, `.closed`, `.busy`, a system error), or the
/// interrupt when the greenlet is killed or an enclosing timeout expires.
///
/// Owns its socket; confined to the thread that made it.
public final class TLSSocket {
    /// The connected socket underneath, which this object owns. Its
    /// `timeout` is the default for calls that pass none.
    public let socket: Socket
    /// The context it was made with (trust, certificate, ALPN).
    public let context: TLSContext
    private var ssl: OpaquePointer?
    /// The name the certificate must match (client side), also sent as SNI.
    public let serverName: String?
    /// The peer's close_notify came, or the stream ended: reads return 0.
    private var readClosed = false

    /// A client connection over `socket` (connected), checking the server
    /// against `serverName` (a DNS name, or an IP address literal) unless
    /// the context does not verify, and offering to resume `session` (from
    /// an earlier connection to the same server). Call `handshake` next
    /// (`connect` does). Never blocks. Throws `TLSError`
    /// (`.configuration`) if OpenSSL cannot set the connection up or
    /// take the name; a server context stops the process.
    public init(client socket: Socket, context: TLSContext, serverName: String?,
                resuming session: TLSSession? = nil) throws {
        precondition(!context.isServer, "TLSSocket(client:) needs a client context")
        self.socket = socket
        self.context = context
        self.serverName = serverName
        try setUp(fd: socket.fd)
        guard let ssl else { return }
        SSL_set_connect_state(ssl)
        if let session { SSL_set_session(ssl, session.session) }
        if let name = serverName {
            let isIP = (try? SocketAddress(ip: name, port: 0)) != nil
            if !isIP { _ = green_ssl_set_tlsext_host_name(ssl, name) }   // SNI: names only
            if context.verification != .insecureNoVerificationForTestsOnly {
                let param = SSL_get0_param(ssl)
                let ok = isIP ? X509_VERIFY_PARAM_set1_ip_asc(param, name) : SSL_set1_host(ssl, name)
                guard ok == 1 else { throw TLSContext.lastError(.configuration, "setting the name to verify: \(name)") }
            }
        }
    }

    /// A server connection over an accepted `socket`. Call `handshake`
    /// next. Never blocks. Throws `TLSError` (`.configuration`) if OpenSSL
    /// cannot set the connection up; a client context stops the process.
    public init(server socket: Socket, context: TLSContext) throws {
        precondition(context.isServer, "TLSSocket(server:) needs a server context")
        self.socket = socket
        self.context = context
        serverName = nil
        try setUp(fd: socket.fd)
        if let ssl { SSL_set_accept_state(ssl) }
    }

    private func setUp(fd: Int32) throws {
        guard let ssl = SSL_new(context.ctx) else { throw TLSContext.lastError(.configuration, "SSL_new") }
        self.ssl = ssl
        guard SSL_set_fd(ssl, fd) == 1 else { throw TLSContext.lastError(.configuration, "SSL_set_fd") }
    }

    deinit {
        if let ssl { SSL_free(ssl) }
    }

    /// Connects to `host`:`port` (resolved without blocking the hub) and
    /// completes the handshake, all within `timeout` seconds, checking the
    /// certificate against `host`. Blocks only the calling greenlet.
    /// Throws `Resolver.Failure` if `host` does not resolve, `SocketError`
    /// if no address connects or time runs out, `TLSError` if the
    /// handshake fails (`.verification` for the certificate), or the
    /// interrupt; the socket is closed on any error.
    public static func connect(host: String, port: UInt16, context: TLSContext,
                               resuming session: TLSSession? = nil, timeout: Double? = nil) throws -> TLSSocket {
        let deadline = timeout.map { Hub.current.nowUpdated() + $0 }
        let socket = try Socket.connect(host: host, port: port, timeout: timeout)
        do {
            let tls = try TLSSocket(client: socket, context: context, serverName: host, resuming: session)
            try tls.handshake(timeout: deadline.map { max(0.001, $0 - Hub.current.nowUpdated()) })
            return tls
        } catch {
            socket.close()
            throw error
        }
    }

    /// Runs the handshake, at most `timeout` seconds (nil: the socket's
    /// default), blocking only the calling greenlet. A certificate that
    /// does not verify is a `.verification` error naming the reason;
    /// another failure a `.handshake` one; `SocketError` `.timedOut` when
    /// time runs out, or the interrupt.
    public func handshake(timeout: Double? = nil) throws {
        try drive("handshake", timeout: timeout) { ssl in SSL_do_handshake(ssl) }
    }

    /// The protocol ALPN settled on ("http/1.1"), if any.
    public var alpnProtocol: String? {
        guard let ssl else { return nil }
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The TLS version in use ("TLSv1.3").
    public var protocolVersion: String? { ssl.map { String(cString: SSL_get_version($0)) } }

    /// Whether this connection resumed an earlier session.
    public var sessionReused: Bool { ssl.map { SSL_session_reused($0) == 1 } ?? false }

    /// The session, to resume on a later connection to the same server
    /// (with TLS 1.3 the server sends it after the handshake: take it once
    /// something was read).
    public var session: TLSSession? {
        guard let ssl, let s = SSL_get1_session(ssl) else { return nil }
        guard SSL_SESSION_is_resumable(s) == 1 else {
            SSL_SESSION_free(s)
            return nil
        }
        return TLSSession(s)
    }

    /// For a connection kept idle between requests: whether it is still
    /// open with nothing unread. Looks without waiting (and takes in what
    /// the server sent on its own, such as TLS 1.3 session tickets); false
    /// if the peer closed, reset, or sent data nobody asked for. Never
    /// blocks.
    public func isIdleAndOpen() -> Bool {
        guard let ssl, !socket.isClosed, !readClosed else { return false }
        ERR_clear_error()
        var byte: UInt8 = 0
        var n = 0
        let rc = SSL_peek_ex(ssl, &byte, 1, &n)
        if rc == 1 { return false }
        let err = SSL_get_error(ssl, rc)
        ERR_clear_error()
        return err == SSL_ERROR_WANT_READ
    }

    /// Reads what is available into `buffer` (waiting until something
    /// is), at most `timeout` seconds; 0 at the end of the stream (the
    /// peer's close_notify, or a close), and from then on. Blocks only the
    /// calling greenlet; throws `TLSError` (`.io`), `SocketError` or the
    /// interrupt.
    public func recv(into buffer: UnsafeMutableRawBufferPointer, timeout: Double? = nil) throws -> Int {
        if readClosed || buffer.count == 0 { return 0 }
        var got = 0
        try drive("read", timeout: timeout) { ssl in
            var n = 0
            let rc = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &n)
            if rc == 1 { got = n }
            return rc
        }
        if got == 0 { readClosed = true }
        return got
    }

    /// Reads up to `maxBytes`; empty at the end of the stream. See
    /// `recv(into:timeout:)`.
    public func recv(maxBytes: Int = 16384, timeout: Double? = nil) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: maxBytes) { buf, count in
            count = try recv(into: UnsafeMutableRawBufferPointer(buf), timeout: timeout)
        }
    }

    /// Writes all of `bytes`, at most `timeout` seconds for the whole
    /// (nil: the socket's `timeout`). Blocks only the calling greenlet;
    /// throws `TLSError` (`.io`, also when the peer has closed the TLS
    /// session), `SocketError` or the interrupt, after which part of
    /// `bytes` may have been sent.
    public func sendAll(_ bytes: UnsafeRawBufferPointer, timeout: Double? = nil) throws {
        let deadline = (timeout ?? socket.timeout).map { Hub.current.nowUpdated() + $0 }
        var offset = 0
        while offset < bytes.count {
            let left = deadline.map { max(0.001, $0 - Hub.current.nowUpdated()) }
            try drive("write", timeout: left) { ssl in
                var n = 0
                let rc = SSL_write_ex(ssl, bytes.baseAddress! + offset, bytes.count - offset, &n)
                if rc == 1 { offset += n }
                return rc
            }
        }
    }

    /// Writes all of `bytes`; see `sendAll(_:timeout:)`.
    public func sendAll(_ bytes: [UInt8], timeout: Double? = nil) throws {
        try bytes.withUnsafeBytes { try sendAll($0, timeout: timeout) }
    }

    /// Writes all of `text` as UTF-8; see `sendAll(_:timeout:)`.
    public func sendAll(_ text: String, timeout: Double? = nil) throws {
        try sendAll(Array(text.utf8), timeout: timeout)
    }

    /// Sends close_notify (waiting at most `timeout` for the socket to
    /// take it), then closes the socket, whatever happens. Errors while
    /// sending are ignored: the peer may be gone already. Blocks only the
    /// calling greenlet; throws only an interrupt (a kill, an enclosing
    /// timeout) that arrives during the wait, after closing.
    public func shutdown(timeout: Double = 1) throws {
        defer { close() }
        if ssl != nil, !socket.isClosed {
            try bestEffort {
                try drive("shutdown", timeout: timeout) { ssl in
                    let rc = SSL_shutdown(ssl)
                    return rc >= 0 ? 1 : rc   // 0: ours sent; theirs not awaited
                }
            }
        }
    }

    /// Closes the socket at once (no close_notify). Never blocks;
    /// greenlets waiting on the socket wake with `SocketError` `.closed`.
    public func close() {
        socket.close()
    }

    /// Runs `call` until it succeeds (1), waiting for the fd whenever
    /// OpenSSL wants to read or write; throws what else happened.
    private func drive(_ operation: String, timeout: Double?, _ call: (OpaquePointer) -> Int32) throws {
        guard let ssl else { throw TLSError(kind: .io, operation: operation, reason: "not set up") }
        let deadline = (timeout ?? socket.timeout).map { Hub.current.nowUpdated() + $0 }
        while true {
            if socket.isClosed { throw SocketError(operation: "TLS \(operation)", reason: .closed) }
            ERR_clear_error()   // another greenlet on this thread may have left some
            let rc = call(ssl)
            if rc == 1 { return }
            let err = SSL_get_error(ssl, rc)
            let left = deadline.map { $0 - Hub.current.nowUpdated() }
            if let left, left <= 0, err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE {
                throw SocketError(operation: "TLS \(operation)", reason: .timedOut(seconds: timeout ?? 0))
            }
            switch err {
            case SSL_ERROR_WANT_READ:
                try socket.waitReadable(timeout: left, operation: "TLS \(operation)")
            case SSL_ERROR_WANT_WRITE:
                try socket.waitWritable(timeout: left, operation: "TLS \(operation)")
            case SSL_ERROR_ZERO_RETURN:
                // close_notify: the end of the stream for a read.
                if operation == "read" { return }
                throw TLSError(kind: .io, operation: operation, reason: "the peer closed the TLS session")
            default:
                throw failure(operation, err)
            }
        }
    }

    private func failure(_ operation: String, _ err: Int32) -> any Error {
        let queued = TLSContext.drainErrors()
        let sysErrno = errno
        if operation == "handshake", let ssl, !context.isServer {
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                let reason = String(cString: X509_verify_cert_error_string(verify))
                let subject = serverName.map { " for \($0)" } ?? ""
                return TLSError(kind: .verification, operation: operation,
                                reason: "the server's certificate\(subject) did not verify: \(reason)")
            }
        }
        let kind: TLSError.Kind = operation == "handshake" ? .handshake : .io
        if err == SSL_ERROR_SYSCALL && queued == nil {
            let reason = sysErrno != 0 ? String(cString: strerror(sysErrno)) : "the peer closed the connection"
            return TLSError(kind: kind, operation: operation, reason: reason)
        }
        return TLSError(kind: kind, operation: operation, reason: queued ?? "SSL error \(err)")
    }
}

/// A TLS session a client may resume on its next connection to the same
/// server (a shorter handshake). Usable from any thread. `@unchecked
/// Sendable`: the `SSL_SESSION` is immutable once the handshake made it,
/// reference counted atomically by OpenSSL, and freed with this object.
public final class TLSSession: @unchecked Sendable {
    let session: OpaquePointer
    init(_ session: OpaquePointer) { self.session = session }
    deinit { SSL_SESSION_free(session) }
}
