import CGreenLinux
import CLibev
import Glibc

/// A cooperative socket: TCP, UDP or Unix domain, IPv4 or IPv6. Calls look
/// blocking and block only the calling greenlet: under the hood the fd is
/// non-blocking and a call that would block waits for libev.
///
/// ```swift
/// let s = try Socket.connect(host: "example.com", port: 80, timeout: 5)
/// try s.sendAll(Array("GET / HTTP/1.0\r\n\r\n".utf8))
/// let reply = try s.recv(maxBytes: 4096)
/// ```
///
/// Every blocking call takes a timeout (nil: the socket's `timeout`, and
/// if that is nil, none) and throws `SocketError` (`.timedOut` when it
/// expires), or the interrupt when the greenlet is killed or an enclosing
/// timeout expires. `close()` wakes greenlets waiting on the socket with
/// `.closed`. One greenlet at a time may wait to read and one to write;
/// another gets `.busy` instead of silently stealing data. A socket
/// belongs to the thread that made it; it is closed when released.
public final class Socket {
    /// The file descriptor; -1 once closed.
    public private(set) var fd: Int32
    /// `AF_INET`, `AF_INET6` or `AF_UNIX`.
    public let family: Int32
    /// Stream or datagram.
    public let type: SocketType
    /// Default timeout in seconds for calls that pass none; nil waits
    /// forever.
    public var timeout: Double?

    /// The waits of the greenlets reading and writing now: their memory,
    /// registered by `waitIO` and cleared before it goes (WaitIO.swift).
    private var reader: UnsafeMutablePointer<FDWait>?
    private var writer: UnsafeMutablePointer<FDWait>?

    /// A new socket. `family`: `AF_INET`, `AF_INET6` or `AF_UNIX`. Never
    /// blocks; throws `SocketError` if the system refuses one (out of file
    /// descriptors: `.system(EMFILE)`).
    public init(family: Int32 = AF_INET, type: SocketType = .stream) throws {
        let fd = Glibc.socket(family, type.rawValue | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.system("socket") }
        self.fd = fd
        self.family = family
        self.type = type
    }

    /// Takes ownership of `fd` (made non-blocking here).
    public init(adopting fd: Int32, family: Int32, type: SocketType) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        self.fd = fd
        self.family = family
        self.type = type
    }

    deinit { close() }

    /// Whether `close()` was called (the fd is then -1).
    public var isClosed: Bool { fd < 0 }

    // MARK: - Closing

    /// Closes the socket. Greenlets waiting on it wake with `.closed`.
    /// Closing twice does nothing.
    public func close() {
        guard fd >= 0 else { return }
        // Watchers go before the fd does (libev's rule).
        if reader != nil || writer != nil {
            Hub.withCurrent { hub in
                if let r = reader { hub.endIOWait(r) }
                if let w = writer { hub.endIOWait(w) }
            }
        }
        reader = nil
        writer = nil
        _ = Glibc.close(fd)
        fd = -1
    }

    /// Shuts down reading, writing or both (`SHUT_RD`, `SHUT_WR`,
    /// `SHUT_RDWR`): the peer sees end of stream after `SHUT_WR`. Never
    /// blocks; throws `SocketError` (`.closed`, or the system's error).
    public func shutdown(_ how: Int32 = Int32(SHUT_RDWR)) throws {
        try checkOpen("shutdown")
        guard Glibc.shutdown(fd, how) == 0 else { throw SocketError.system("shutdown") }
    }

    // MARK: - Waiting

    @inline(__always)
    private func checkOpen(_ operation: String) throws {
        if fd < 0 { throw Socket.closedError(operation) }
    }

    @inline(never)
    private static func closedError(_ operation: String) -> any Error {
        SocketError(operation: operation, reason: .closed)
    }

    /// Waits until the socket is ready to read (or write); throws
    /// `.timedOut` after `timeout` (or the socket's default).
    ///
    /// Its frame stays small (the errors are made out of line): a parked
    /// compact greenlet keeps what it holds.
    /// `what`: what a dump says it waits on ("Socket.recv" or
    /// "Socket.send" by default).
    private func wait(writing: Bool, _ operation: String, timeout: Double?, address: SocketAddress? = nil,
                      on what: StaticString? = nil) throws {
        if fd < 0 || (writing ? writer : reader) != nil {
            throw refusedWait(writing: writing, operation, address: address)
        }
        let limit = timeout ?? self.timeout
        let outcome = try Hub.current.waitIO(
            fd: fd, events: Int32(writing ? EV_WRITE : EV_READ), timeout: limit,
            on: what ?? (writing ? "Socket.send" : "Socket.recv"),
            register: { if writing { self.writer = $0 } else { self.reader = $0 } })
        if outcome != .ready { throw waitFailed(outcome, operation, limit: limit, address: address) }
    }

    /// Waits until the socket can be read without blocking, at most
    /// `timeout` seconds (or the socket's default); throws `.timedOut`,
    /// or `.closed` if it is closed meanwhile. For protocol layers over
    /// the socket (TLS) that make their own non-blocking calls.
    public func waitReadable(timeout: Double? = nil, operation: String = "wait for reading") throws {
        try wait(writing: false, operation, timeout: timeout)
    }

    /// Waits until the socket can be written without blocking; see
    /// `waitReadable`.
    public func waitWritable(timeout: Double? = nil, operation: String = "wait for writing") throws {
        try wait(writing: true, operation, timeout: timeout)
    }

    /// The error of a wait that cannot start: the socket is closed, or
    /// another greenlet already waits the same way.
    @inline(never)
    private func refusedWait(writing: Bool, _ operation: String, address: SocketAddress?) -> any Error {
        guard fd >= 0, let other = writing ? writer : reader else {
            return SocketError(operation: operation, reason: .closed, address: address)
        }
        return SocketError(operation: operation, reason: .busy(waiter: other.pointee.greenlet.takeUnretainedValue().name),
                           address: address)
    }

    @inline(never)
    private func waitFailed(_ outcome: Hub.IOWaitOutcome, _ operation: String, limit: Double?,
                            address: SocketAddress?) -> any Error {
        if outcome == .closed { return SocketError(operation: operation, reason: .closed, address: address) }
        return SocketError(operation: operation, reason: .timedOut(seconds: limit ?? 0), address: address)
    }

    @inline(never)
    private static func systemError(_ operation: String, _ err: Int32, _ address: () -> SocketAddress?) -> any Error {
        SocketError.system(operation, err, address: address())
    }

    /// Runs the non-blocking system call `call` until it succeeds: on
    /// EAGAIN waits for the socket (reading, or `writing`), on EINTR (or an
    /// errno in `retryOn`) tries again, on any other errno throws
    /// `SocketError` naming `operation` and `errorAddress()`.
    private func io<R: BinaryInteger>(_ operation: String, writing: Bool, timeout: Double?,
                                      waitAddress: SocketAddress? = nil, retryOn: Int32 = EINTR,
                                      waitingOn what: StaticString? = nil,
                                      errorAddress: () -> SocketAddress?, _ call: () -> R) throws -> R {
        while true {
            try checkOpen(operation)
            let n = call()
            if n >= 0 { return n }
            let err = errno
            switch err {
            case EAGAIN, EWOULDBLOCK: try wait(writing: writing, operation, timeout: timeout, address: waitAddress, on: what)
            case EINTR, retryOn: continue
            default: throw Socket.systemError(operation, err, errorAddress)
            }
        }
    }

    // MARK: - Connecting

    /// Connects to `address`, waiting at most `timeout` seconds.
    public func connect(to address: SocketAddress, timeout: Double? = nil) throws {
        try checkOpen("connect")
        let rc = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        if rc == 0 { return }
        let err = errno
        guard err == EINPROGRESS || err == EINTR else { throw SocketError.system("connect", err, address: address) }
        try wait(writing: true, "connect", timeout: timeout, address: address, on: "Socket.connect")
        var soError: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
        if soError != 0 { throw SocketError.system("connect", soError, address: address) }
    }

    /// Resolves `host` (never blocking the hub) and connects to one of its
    /// addresses, IPv6 and IPv4, as RFC 8305 says (`connect(addresses:)`:
    /// attempts overlap, a new one every `attemptDelay` seconds, the first
    /// to connect wins); the whole attempt takes at most `timeout`
    /// seconds. Throws `Resolver.Failure` if `host` does not resolve, the
    /// last address's `SocketError` if none answers, `SocketError`
    /// `.timedOut` when `timeout` expires, or the interrupt.
    public static func connect(host: String, port: UInt16, type: SocketType = .stream,
                               attemptDelay: Double = defaultAttemptDelay, timeout: Double? = nil) throws -> Socket {
        let attempt = { () throws -> Socket in
            let addresses = try Resolver.resolve(host: host, port: port, type: type)
            return try connect(addresses: addresses, type: type, attemptDelay: attemptDelay)
        }
        guard let timeout else { return try attempt() }
        var result: Socket?
        if try !Hub.current.withDeadline(timeout, { result = try attempt() }) {
            throw SocketError(operation: "connect to \(host):\(port)", reason: .timedOut(seconds: timeout))
        }
        return result!
    }

    // MARK: - Listening

    /// Binds to `address`. Never blocks; throws `SocketError` (address in
    /// use, say).
    public func bind(to address: SocketAddress) throws {
        try checkOpen("bind")
        guard address.withSockAddr({ Glibc.bind(fd, $0, $1) }) == 0 else {
            throw SocketError.system("bind", address: address)
        }
    }

    /// Listens for connections. Never blocks; throws `SocketError`.
    public func listen(backlog: Int32 = 1024) throws {
        try checkOpen("listen")
        guard Glibc.listen(fd, backlog) == 0 else { throw SocketError.system("listen") }
    }

    /// Accepts a connection, waiting at most `timeout` seconds. Throws
    /// `.system(EMFILE)` (or `ENFILE`) when out of file descriptors.
    public func accept(timeout: Double? = nil) throws -> (Socket, SocketAddress) {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        // A connection reset before it was accepted (ECONNABORTED): the next.
        let client = try io("accept", writing: false, timeout: timeout, retryOn: ECONNABORTED, waitingOn: "Socket.accept",
                            errorAddress: { localAddress }) {
            len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            return withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    green_accept4(fd, $0, &len, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
        }
        return (Socket(adoptingNonBlocking: client, family: family, type: type), SocketAddress(storage: storage, length: len))
    }

    private init(adoptingNonBlocking fd: Int32, family: Int32, type: SocketType) {
        self.fd = fd
        self.family = family
        self.type = type
    }

    // MARK: - Reading

    /// Reads what is available into `buffer` (waiting until something is),
    /// at most `timeout` seconds. Returns the byte count; 0 means the peer
    /// closed its side (end of stream).
    public func recv(into buffer: UnsafeMutableRawBufferPointer, timeout: Double? = nil) throws -> Int {
        try io("recv", writing: false, timeout: timeout, errorAddress: { peerAddress }) {
            Glibc.recv(fd, buffer.baseAddress, buffer.count, 0)
        }
    }

    /// Reads up to `maxBytes`; an empty array means end of stream.
    public func recv(maxBytes: Int = 65536, timeout: Double? = nil) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: maxBytes) { buf, count in
            count = try recv(into: UnsafeMutableRawBufferPointer(buf), timeout: timeout)
        }
    }

    /// Reads one datagram (or what is available) and its sender's address.
    public func recvFrom(maxBytes: Int = 65536, timeout: Double? = nil) throws -> ([UInt8], SocketAddress) {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let bytes = try [UInt8](unsafeUninitializedCapacity: maxBytes) { buf, count in
            count = try io("recvfrom", writing: false, timeout: timeout, errorAddress: { nil }) {
                len = socklen_t(MemoryLayout<sockaddr_storage>.size)
                return withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.recvfrom(fd, buf.baseAddress, maxBytes, 0, $0, &len)
                    }
                }
            }
        }
        return (bytes, SocketAddress(storage: storage, length: len))
    }

    // MARK: - Writing

    /// Writes what the socket takes now of `bytes` (waiting until it takes
    /// something), at most `timeout` seconds; returns the count written.
    public func send(_ bytes: UnsafeRawBufferPointer, timeout: Double? = nil) throws -> Int {
        try io("send", writing: true, timeout: timeout, errorAddress: { peerAddress }) {
            Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
        }
    }

    /// Writes all of `bytes`, completing partial writes; `timeout` bounds
    /// each wait for the socket to take more.
    public func sendAll(_ bytes: UnsafeRawBufferPointer, timeout: Double? = nil) throws {
        var offset = 0
        while offset < bytes.count {
            offset += try send(UnsafeRawBufferPointer(rebasing: bytes[offset...]), timeout: timeout)
        }
    }

    /// Writes all of `bytes`; see `sendAll(_:timeout:)`.
    public func sendAll(_ bytes: [UInt8], timeout: Double? = nil) throws {
        try bytes.withUnsafeBytes { try sendAll($0, timeout: timeout) }
    }

    /// Writes all of `text` as UTF-8.
    public func sendAll(_ text: String, timeout: Double? = nil) throws {
        try sendAll(Array(text.utf8), timeout: timeout)
    }

    /// Sends a datagram to `address`.
    @discardableResult
    public func sendTo(_ bytes: [UInt8], address: SocketAddress, timeout: Double? = nil) throws -> Int {
        try io("sendto", writing: true, timeout: timeout, waitAddress: address, errorAddress: { address }) {
            bytes.withUnsafeBytes { buf in
                address.withSockAddr { Glibc.sendto(fd, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL), $0, $1) }
            }
        }
    }

    // MARK: - Addresses and options

    /// The address the socket is bound to.
    public var localAddress: SocketAddress? {
        address { getsockname(fd, $0, $1) }
    }

    /// The address of the connected peer.
    public var peerAddress: SocketAddress? {
        address { getpeername(fd, $0, $1) }
    }

    private func address(_ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32)
        -> SocketAddress? {
        guard fd >= 0 else { return nil }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, &len) }
        }
        return rc == 0 ? SocketAddress(storage: storage, length: len) : nil
    }

    /// Sets an integer socket option (`setsockopt`). Never blocks; throws
    /// `SocketError` if the socket is closed or the call fails.
    public func setOption(level: Int32, name: Int32, value: Int32) throws {
        try checkOpen("setsockopt")
        var v = value
        guard setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SocketError.system("setsockopt")
        }
    }

    /// Reads an integer socket option (`getsockopt`). Never blocks; throws
    /// as `setOption`.
    public func option(level: Int32, name: Int32) throws -> Int32 {
        try checkOpen("getsockopt")
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, name, &v, &len) == 0 else { throw SocketError.system("getsockopt") }
        return v
    }

    /// Sets `SO_REUSEADDR` (bind to an address still in TIME_WAIT).
    /// Throws `SocketError` if the socket is closed or the call fails.
    public func setReuseAddress(_ on: Bool = true) throws {
        try setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: on ? 1 : 0)
    }

    /// Sets `SO_REUSEPORT` (several sockets bound to one address, the
    /// kernel spreading connections across them). Throws as
    /// `setReuseAddress`.
    public func setReusePort(_ on: Bool = true) throws {
        try setOption(level: SOL_SOCKET, name: SO_REUSEPORT, value: on ? 1 : 0)
    }

    /// Sets `TCP_NODELAY` (small writes go out at once, no Nagle delay).
    /// Throws as `setReuseAddress`.
    public func setNoDelay(_ on: Bool = true) throws {
        try setOption(level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: on ? 1 : 0)
    }

    // MARK: - Conveniences

    /// A TCP (or Unix stream) socket bound to `address` and listening
    /// (`SO_REUSEADDR` set for IP, and `SO_REUSEPORT` with `reusePort`).
    /// Never blocks; throws `SocketError` (after closing the socket it
    /// made).
    public static func listen(on address: SocketAddress, backlog: Int32 = 1024,
                              reusePort: Bool = false) throws -> Socket {
        let s = try Socket(family: address.family, type: .stream)
        do {
            if address.family != AF_UNIX {
                try s.setReuseAddress()
                if reusePort { try s.setReusePort() }
            }
            try s.bind(to: address)
            try s.listen(backlog: backlog)
        } catch {
            s.close()
            throw error
        }
        return s
    }
}

/// A socket's type.
public enum SocketType: Sendable {
    /// `SOCK_STREAM`: TCP, or a Unix stream socket.
    case stream
    /// `SOCK_DGRAM`: UDP, or a Unix datagram socket.
    case datagram

    /// The `SOCK_` constant.
    public var rawValue: Int32 {
        switch self {
        case .stream: return Int32(SOCK_STREAM.rawValue)
        case .datagram: return Int32(SOCK_DGRAM.rawValue)
        }
    }
}
