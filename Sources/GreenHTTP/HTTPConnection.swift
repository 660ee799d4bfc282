import Glibc
import Green
import GreenTLS

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
