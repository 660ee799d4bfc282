import Glibc
import Green
import GreenTLS

/// One request and its response on one pooled connection: writes the
/// request (its body too, streamed as `HTTPRequestBody` says, with
/// `Expect: 100-continue` when asked), reads the response's head, and
/// hands the connection back to its pool exactly once (kept alive only
/// when the response ended cleanly). Owned by `HTTPClient.once`, then by
/// the `HTTPResponseStream` that reads the body, if any.
final class HTTPClientCall {
    let pool: HostPool
    let connection: HostPool.Connection
    let url: String
    let options: HTTPClient.Options
    let parser: HTTPMessageParser
    /// Whether any byte of the request may have reached the server.
    private(set) var written = false
    /// Response bytes read so far.
    private(set) var received = 0
    /// The server answered before the body was sent (after an `Expect:
    /// 100-continue`): the connection cannot be reused.
    private(set) var bodySkipped = false
    /// The end of the connection's stream was read.
    private(set) var atEnd = false
    /// The request and response as they crossed the connection, when an
    /// exchange is observed.
    var requestBytes: [UInt8] = []
    var rawResponse: [UInt8]?
    private var released = false

    init(pool: HostPool, connection: HostPool.Connection, url: String, options: HTTPClient.Options,
         head: Bool, streamsFinal: ((Int, HTTPHeaders) -> Bool)?, observed: Bool) {
        self.pool = pool
        self.connection = connection
        self.url = url
        self.options = options
        parser = HTTPMessageParser(.response, limits: options.limits)
        parser.expectNoBody = head
        parser.streamsBody = streamsFinal
        rawResponse = observed ? [] : nil
    }

    deinit { release(keep: false) }

    /// Gives the connection back (kept for reuse only if `keep`). Once.
    func release(keep: Bool) {
        guard !released else { return }
        released = true
        pool.release(connection, keep: keep && !bodySkipped)
    }

    /// Whether the connection may be reused after the current response.
    var keepAlive: Bool { parser.keepAlive && !parser.inMessage }

    // MARK: - Writing

    /// Writes `bytes`; `written` turns true once a byte of them may have
    /// left (over TLS from the start: a record may be partly sent).
    func send(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        do {
            if connection.tls != nil || written {
                written = true
                try connection.transport.sendAll(bytes, timeout: options.readTimeout)
                return
            }
            let first = try connection.socket.send(bytes, timeout: options.readTimeout)
            written = true
            if first < bytes.count {
                try connection.socket.sendAll(UnsafeRawBufferPointer(rebasing: bytes[first...]), timeout: options.readTimeout)
            }
        } catch let e as SocketError {
            if case .timedOut(let s) = e.reason { throw HTTPClientError(url: url, kind: .timedOut(phase: "write", seconds: s)) }
            throw HTTPClientError(url: url, kind: .connection(e))
        } catch let e as TLSError {
            throw HTTPClientError(url: url, kind: .tls(e))
        }
    }

    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try send($0) }
    }

    /// Writes the request: `head` (its header section), then `body` as
    /// `plan` says, waiting for a 100 (Continue) first when it announces
    /// one.
    func sendRequest(head: [UInt8], body: HTTPRequestBody, plan: BodyPlan) throws {
        if case .bytes(let bytes) = body, !plan.expectContinue {
            // One write for small requests.
            try send(head + bytes)
            if rawResponse != nil { requestBytes = head + bytes }
            return
        }
        try send(head)
        if rawResponse != nil { requestBytes = head }
        if plan.expectContinue, try !continueArrived() {
            bodySkipped = true
            return
        }
        try sendBody(body, plan: plan)
    }

    /// After a header section with `Expect: 100-continue`: waits for the
    /// server's answer at most `expectContinueTimeout` seconds. False when
    /// a final response came instead (the body is then not sent); true on
    /// a 100, or when nothing came in time (RFC 9110 section 10.1.1: send
    /// the body anyway).
    private func continueArrived() throws -> Bool {
        do {
            try connection.socket.waitReadable(timeout: options.expectContinueTimeout, operation: "wait for 100 Continue")
        } catch let e as SocketError {
            if case .timedOut = e.reason { return true }
            throw HTTPClientError(url: url, kind: .connection(e))
        }
        while true {
            if let h = parser.head, h.status >= 200 { return false }
            // Informational answers (the 100 itself) are done with.
            if parser.takeResponses().contains(where: { $0.status == 100 }) { return true }
            guard try fill() else { return false }
        }
    }

    private func sendBody(_ body: HTTPRequestBody, plan: BodyPlan) throws {
        switch body {
        case .bytes(let bytes):
            try send(bytes)
        case .stream(let length, let next):
            var total = 0
            var framed: [UInt8] = []
            while let piece = try next() {
                guard !piece.isEmpty else { continue }
                total += piece.count
                if let length, total > length {
                    throw HTTPClientError(url: url, kind: .requestBody("the body's pieces exceed its declared length \(length)"))
                }
                if plan.chunked {
                    framed.removeAll(keepingCapacity: true)
                    framed.append(contentsOf: String(piece.count, radix: 16).utf8)
                    framed.append(contentsOf: [0x0D, 0x0A])
                    framed.append(contentsOf: piece)
                    framed.append(contentsOf: [0x0D, 0x0A])
                    try send(framed)
                } else {
                    try send(piece)
                }
            }
            if let length, total != length {
                throw HTTPClientError(url: url, kind: .requestBody("the body's pieces add up to \(total) bytes, not the declared \(length)"))
            }
            if plan.chunked { try send(Array("0\r\n\r\n".utf8)) }
        case .file:
            guard let file = plan.file else { return }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
            defer { buffer.deallocate() }
            var left = file.size
            while left > 0 {
                let n: Int
                do {
                    n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(buffer.count, left)]))
                } catch let e as HTTPRequestBodyError {
                    throw HTTPClientError(url: url, kind: .requestBody(e.description))
                }
                if n == 0 {
                    throw HTTPClientError(url: url, kind: .requestBody("\(file.path) shrank while it was sent"))
                }
                try send(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
                left -= n
            }
        }
    }

    // MARK: - Reading

    /// Reads once from the connection and parses what came; false at the
    /// end of the stream (the parser then told, which completes a body
    /// that runs to the end or throws for one cut short).
    func fill() throws -> Bool {
        if atEnd { return false }
        let more: Bool
        do {
            more = try connection.reader.withAvailableBytes(timeout: options.readTimeout) { bytes in
                received += bytes.count
                rawResponse?.append(contentsOf: bytes)
                return try parser.feed(bytes)
            }
        } catch let e as SocketError {
            if case .timedOut(let s) = e.reason { throw HTTPClientError(url: url, kind: .timedOut(phase: "read", seconds: s)) }
            throw HTTPClientError(url: url, kind: .connection(e), bytesReceived: received)
        } catch let e as TLSError {
            throw HTTPClientError(url: url, kind: .tls(e), bytesReceived: received)
        } catch let e as HTTPParseError {
            throw HTTPClientError(url: url, kind: .parse(e), bytesReceived: received)
        }
        if !more {
            atEnd = true
            do {
                try parser.finish()
            } catch let e as HTTPParseError {
                throw HTTPClientError(url: url, kind: e.kind == .truncated && received == 0 ? .closedBeforeResponse : .parse(e),
                                      bytesReceived: received)
            }
            return false
        }
        return true
    }

    enum Head {
        /// A response read whole (a redirect, or any response when the
        /// body is not streamed).
        case complete(HTTPResponse)
        /// The final response's head; its body streams.
        case streaming(status: Int, reason: String, headers: HTTPHeaders)
    }

    /// Reads until the final response's head (when its body streams) or
    /// the whole final response; 1xx answers are passed over.
    func readHead() throws -> Head {
        while true {
            if parser.streamsBody != nil, parser.isStreamingBody, let h = parser.head, h.status >= 200 {
                return .streaming(status: h.status, reason: h.reason, headers: h.headers)
            }
            if let r = parser.takeResponses().last(where: { !(100..<200).contains($0.status) }) {
                return .complete(r)
            }
            guard try fill() else {
                throw HTTPClientError(url: url, kind: .closedBeforeResponse, bytesReceived: received)
            }
        }
    }

    /// Reports the exchange to `observe` with what crossed so far.
    func report(to observe: ((HTTPExchange) throws -> Void)?, complete: Bool) throws {
        guard let observe, let raw = rawResponse else { return }
        rawResponse = nil
        try observe(HTTPExchange(url: url, remoteAddress: connection.socket.peerAddress?.host, request: requestBytes,
                                 response: raw, complete: complete))
    }
}

/// How a request's body goes: its length, chunked framing, an `Expect:
/// 100-continue`, and the open file for a file body.
struct BodyPlan {
    let length: Int?
    let chunked: Bool
    let expectContinue: Bool
    let file: RequestBodyFile?

    init(_ body: HTTPRequestBody, method: String, options: HTTPClient.Options, url: String) throws {
        switch body {
        case .bytes(let b):
            length = b.isEmpty && method != "POST" && method != "PUT" && method != "PATCH" ? nil : b.count
            file = nil
        case .stream(let l, _):
            length = l
            file = nil
        case .file(let path):
            do {
                let f = try RequestBodyFile(path: path)
                file = f
                length = f.size
            } catch let e as HTTPRequestBodyError {
                throw HTTPClientError(url: url, kind: .requestBody(e.description))
            }
        }
        if case .stream(nil, _) = body { chunked = true } else { chunked = false }
        let large = chunked || (length ?? 0) > (options.expectContinueThreshold ?? .max)
        expectContinue = large && options.expectContinueThreshold != nil
    }

    /// The framing header lines.
    var headerLines: String {
        if chunked { return "Transfer-Encoding: chunked\r\n" + (expectContinue ? "Expect: 100-continue\r\n" : "") }
        guard let length else { return "" }
        return "Content-Length: \(length)\r\n" + (expectContinue ? "Expect: 100-continue\r\n" : "")
    }
}
