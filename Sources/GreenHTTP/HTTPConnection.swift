import Glibc
import Green
import GreenTLS

/// One server connection: read, parse, answer, until it closes.
///
/// Two ways to hand requests over: whole (`HTTPServer.Handler`: the body
/// read up to `limits.maxBodyBytes` first; pipelined requests parsed in
/// batches), or streaming (`HTTPServer.StreamingHandler`: the handler gets
/// the head at once and reads the body from an `HTTPRequestBodyStream` as
/// it arrives; the parser pauses at the end of each request).
final class HTTPConnection {
    enum Handling {
        case whole(HTTPServer.Handler)
        case streaming(HTTPServer.StreamingHandler)
    }

    let socket: Socket
    let peer: SocketAddress
    let options: HTTPServer.Options
    let handling: Handling
    let parser: HTTPMessageParser
    private let idleEntry: IdleConnections.Entry
    /// What the client sent and the parser has not taken yet (after a
    /// pause at a streamed request's end, or an upgrade); made by `run`.
    private var reader: BufferedReader!
    private var out: [UInt8] = []

    init(socket: Socket, peer: SocketAddress, options: HTTPServer.Options, handling: Handling) {
        self.socket = socket
        self.peer = peer
        self.options = options
        self.handling = handling
        parser = HTTPMessageParser(.request, limits: options.limits)
        idleEntry = IdleConnections.Entry(socket)
        out.reserveCapacity(1024)
    }

    /// TLS on the socket, when the server has a context (set by `run`).
    private var tls: TLSSocket?
    var transport: any ByteStream { tls ?? socket }

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
        defer {
            // A kill that arrives during close_notify is thrown at this
            // greenlet's next blocking call (if it makes one).
            do { try tls?.shutdown(timeout: 0.1) } catch { Hub.rearmInterrupt() }
        }
        reader = BufferedReader(transport, capacity: 16 * 1024)
        switch handling {
        case .whole(let handler): try runWhole(handler)
        case .streaming(let handler): try runStreaming(handler)
        }
    }

    // MARK: - Reading

    /// When the message being read began (for the header timeout).
    private var messageStarted = 0.0

    /// Why the connection is ending, for a streamed body's reader.
    private(set) var endReason = ""

    /// Reads more for the parser (first what a pause left unread) and
    /// parses it. Returns false when the connection ends: the client
    /// closed, reset, broke TLS or went quiet, or it was answered with an
    /// error status (malformed, over a limit, slow headers), already sent.
    /// Throws only a kill or an enclosing timeout. `timeout` nil: the idle
    /// or header timeout, as the parser's state says.
    private func pump(timeout: Double? = nil) throws -> Bool {
        let wasInMessage = parser.inMessage
        let waitingForHeaders = parser.inMessage && !parser.headersComplete
        var wait = timeout ?? options.idleTimeout
        if waitingForHeaders {
            wait = max(0.001, messageStarted + options.headerTimeout - Hub.current.nowUpdated())
        }
        let parse = { [parser] (bytes: UnsafeRawBufferPointer) throws -> Int in try parser.feed(bytes) }
        let more: Bool
        do {
            if parser.inMessage || reader.bufferedCount > 0 {
                more = try reader.withAvailableBytes(timeout: wait, parse)
            } else {
                // Between messages the connection may be closed when the
                // process runs out of descriptors.
                more = try Hub.current.idleConnections.whileIdle(idleEntry) {
                    try reader.withAvailableBytes(timeout: wait, parse)
                }
            }
        } catch let e as HTTPParseError {
            endReason = "\(e)"
            try answer(e)
            return false
        } catch let e as TLSError {
            endReason = "\(e)"
            return false   // the client broke the TLS session
        } catch let e as SocketError {
            endReason = "\(e)"
            if case .timedOut = e.reason, waitingForHeaders {
                try bestEffort { try send(HTTPResponse(status: 408, text: "request header timeout\n"), keepAlive: false, head: false) }
                return false
            }
            return false
        }
        if !more {
            endReason = "the client closed the connection"
            do {
                try parser.finish()
            } catch let e as HTTPParseError where e.kind != .truncated {
                try answer(e)
                return false
            } catch {}
            return false
        }
        // A message began in these bytes: its header clock starts now.
        if parser.inMessage && !wasInMessage { messageStarted = Hub.current.nowUpdated() }
        if case .whole = handling, parser.takeContinueWish() {
            // The whole body is read before the handler runs: let the
            // client send it at once (RFC 9110 section 10.1.1).
            try sendContinue()
        }
        return true
    }

    /// The error status for a request the parser refused, and the end.
    /// Throws only an interrupt (the client may be gone: its loss).
    private func answer(_ e: HTTPParseError) throws {
        let status: Int
        switch e.kind {
        case .headersTooLarge, .tooManyHeaders: status = 431
        case .bodyTooLarge: status = 413
        case .targetTooLong: status = 414
        case .malformed, .invalidRequest, .truncated: status = 400
        }
        try bestEffort { try send(HTTPResponse(status: status, text: "\(e)\n"), keepAlive: false, head: false) }
    }

    private(set) var continueSent = false

    /// Sends "100 Continue" once for the current request. Throws only an
    /// interrupt: a client gone shows at the next read.
    func sendContinue() throws {
        guard !continueSent else { return }
        continueSent = true
        try bestEffort { try transport.sendAll("HTTP/1.1 100 Continue\r\n\r\n", timeout: options.writeTimeout) }
    }

    // MARK: - Whole requests

    private func runWhole(_ handler: HTTPServer.Handler) throws {
        while true {
            var requests = parser.takeRequests()
            while requests.isEmpty {
                if try !pump() { return }
                requests = parser.takeRequests()
                if !requests.isEmpty && parser.inMessage { messageStarted = Hub.current.nowUpdated() }
            }
            for (i, var request) in requests.enumerated() {
                request.peer = peer
                continueSent = false
                let response = try HTTPDebugEndpoints.response(to: request, options: options)
                    ?? respond { try handler(request) }
                if parser.isUpgrade && i == requests.count - 1 {
                    try upgrade(request, response)
                    return
                }
                let keepAlive = parser.keepAlive && !(request.headers["Connection"]?.caseInsensitiveEquals("close") ?? false)
                guard try deliver(response, keepAlive: keepAlive, head: request.method == "HEAD") else { return }
                if !keepAlive { return }
            }
        }
    }

    /// The handler's response, or a 500 when it threw; a kill or timeout
    /// that reached the handler is thrown, ending the connection without
    /// an answer.
    private func respond(_ handler: () throws -> HTTPResponse) throws -> HTTPResponse {
        switch try catchingFailures(handler) {
        case .success(let response): return response
        case .failure: return HTTPResponse(status: 500, text: "internal server error\n")
        }
    }

    /// Sends `response`; false when the client is gone (reset, stopped
    /// reading: its loss, not the server's error) or a streamed body's
    /// writer failed. Throws only an interrupt.
    private func deliver(_ response: HTTPResponse, keepAlive: Bool, head: Bool) throws -> Bool {
        if case .success = try catchingFailures({ try send(response, keepAlive: keepAlive, head: head) }) { return true }
        return false
    }

    /// The answer to a request to switch protocols: the parser stopped
    /// after it, so the connection ends with this response or becomes
    /// the new protocol's.
    /// Throws only an interrupt; what the new protocol's handler throws
    /// otherwise ends the connection.
    private func upgrade(_ request: HTTPRequest, _ response: HTTPResponse) throws {
        guard response.status == 101, let upgrade = response.upgrade else {
            _ = try deliver(response, keepAlive: false, head: request.method == "HEAD")
            return
        }
        guard try deliver(response, keepAlive: true, head: false) else { return }
        // Bytes after the request, already read (no wait): the new protocol's.
        let rest = try reader.readExactly(reader.bufferedCount)
        try bestEffort { try upgrade(HTTPUpgradedConnection(request: request, socket: socket, tls: tls, buffered: rest)) }
    }

    // MARK: - Streaming requests

    private func runStreaming(_ handler: HTTPServer.StreamingHandler) throws {
        parser.streamsRequestBodies = true
        while true {
            var head = parser.takeRequestHead()
            while head == nil {
                if try !pump() { return }
                head = parser.takeRequestHead()
            }
            var request = head!
            request.peer = peer
            continueSent = false
            let body = HTTPRequestBodyStream(connection: self, expectsContinue: parser.takeContinueWish())
            let outcome = Result {
                try HTTPDebugEndpoints.response(to: request, options: options) ?? respond { try handler(request, body) }
            }
            body.handlerReturned()
            let response = try outcome.get()
            // The connection ended under the body's reader (an error
            // status, if any, is sent).
            if body.ended { return }
            if parser.isUpgrade {
                try upgrade(request, response)
                return
            }
            // What the handler left of the body: read and dropped (up to
            // the body limit), unless the client waits for a 100 that was
            // never sent and may never send it.
            var reusable = true
            if !body.isComplete {
                reusable = try !(body.expectsContinue && !continueSent) && body.discard(upTo: options.limits.maxBodyBytes)
            }
            let keepAlive = reusable && parser.keepAlive
                && !(request.headers["Connection"]?.caseInsensitiveEquals("close") ?? false)
            guard try deliver(response, keepAlive: keepAlive, head: request.method == "HEAD") else { return }
            if !keepAlive { return }
            parser.resume()
        }
    }

    /// For `HTTPRequestBodyStream`: parses more of the body; false when
    /// the connection ends (see `pump`).
    func pumpBody() throws -> Bool {
        try pump(timeout: options.bodyReadTimeout)
    }

    // MARK: - Writing

    /// Writes `response`: its headers, a Content-Length (or chunked
    /// framing when it streams without one), Date, and Connection: close
    /// when ending.
    private func send(_ response: HTTPResponse, keepAlive: Bool, head: Bool) throws {
        out.removeAll(keepingCapacity: true)
        append("HTTP/1.1 \(response.status) \(response.reason)\r\n")
        var length: Int?, hasDate = false, hasConnection = false
        for (name, value) in response.headers {
            if name.caseInsensitiveEquals("Content-Length") { length = Int(value) ?? -1 }
            if name.caseInsensitiveEquals("Date") { hasDate = true }
            if name.caseInsensitiveEquals("Connection") { hasConnection = true }
            append(name)
            append(": ")
            append(value)
            append("\r\n")
        }
        let streams = response.bodyWriter != nil
        // A streamed body with its length given goes as it is; without, chunked.
        let chunked = streams && length == nil
        if chunked {
            append("Transfer-Encoding: chunked\r\n")
        } else if length == nil && response.status != 204 && response.status != 304 && !(100..<200).contains(response.status) {
            append("Content-Length: \(response.body.count)\r\n")
        }
        if !hasDate { append("Date: \(HTTPDate.now())\r\n") }
        if !keepAlive && !hasConnection { append("Connection: close\r\n") }
        append("\r\n")
        if !head && !streams { out.append(contentsOf: response.body) }
        try transport.sendAll(out, timeout: options.writeTimeout)
        if let writer = response.bodyWriter, !head {
            let w = HTTPBodyWriter(transport: transport, timeout: options.writeTimeout, chunked: chunked, length: length)
            try writer(w)
            try w.finish()
        }
    }

    private func append(_ s: String) {
        var s = s
        s.withUTF8 { out.append(contentsOf: $0) }
    }
}
