import Foundation
import Glibc
import Green
import GreenTLS

/// An HTTP/1.1 client on greenlets: calls look blocking and park only the
/// calling greenlet, so many greenlets fetch at once.
///
/// ```swift
/// let client = HTTPClient()
/// let page = try client.get("http://127.0.0.1:8080/")
/// print(page.status, page.text)
/// ```
///
/// Connections are kept alive and reused, at most
/// `maxConnectionsPerHost` per host (more requests wait their turn, first
/// come first served); a connection idle for `idleConnectionTimeout` is
/// closed, and pools are kept for at most `maxHosts` hosts. New
/// connections race a host's IPv6 and IPv4 addresses (RFC 8305, see
/// `Socket.connect(addresses:)`). Bodies may be sized or chunked and are
/// decoded from gzip or deflate. Every failure is an `HTTPClientError`
/// naming the URL. Confined to one hub's thread (one client per hub).
///
/// What the client does on its own, as browsers and curl do:
/// - **Redirects** are followed up to `maxRedirects`; loops are refused.
///   A redirect to another origin (scheme, host or port) drops the
///   caller's `Authorization`, `Proxy-Authorization` and `Cookie` headers,
///   for the rest of the chain: credentials stay with the origin they were
///   given for. A redirect from `https` to `http` is refused unless
///   `allowInsecureRedirects`; one to another host, unless
///   `allowCrossHostRedirects` is false. A 303 (and a 301 or 302 after a
///   POST) becomes a GET without body and without the body's headers.
/// - **Retries**: a request is sent again, once, on a new connection only
///   when a kept-alive connection turns out to have been closed by the
///   server before any byte of a response came, and only if sending it
///   twice is harmless: its method is idempotent (GET, HEAD, OPTIONS,
///   TRACE, PUT, DELETE; RFC 9110 section 9.2.2), it carries an
///   `Idempotency-Key`, or not one byte of it was written. A POST the
///   server may have acted on is never replayed; the caller gets the
///   error.
public final class HTTPClient {
    public struct Options: Sendable {
        public var connectTimeout = 10.0
        /// Seconds any single read or write may wait.
        public var readTimeout = 30.0
        /// Seconds for the whole request, redirects included (nil: none).
        public var totalTimeout: Double?
        public var maxConnectionsPerHost = 8
        public var followRedirects = true
        public var maxRedirects = 10
        /// Whether a redirect may lead to another host (the caller's
        /// credentials are dropped on the way either way).
        public var allowCrossHostRedirects = true
        /// Whether a redirect may lead from `https` to `http`, where the
        /// rest of the exchange can be read and changed on the way.
        public var allowInsecureRedirects = false
        /// Limits on the responses; `maxBodyBytes` also bounds decoded
        /// (decompressed) bodies.
        public var limits = HTTPLimits(maxHeaderBytes: 64 * 1024, maxHeaderCount: 200, maxBodyBytes: 32 * 1024 * 1024)
        /// Asks for gzip/deflate and decodes it.
        public var decompress = true
        public var userAgent = "swift-green/0.1"
        /// Idle connections kept per host.
        public var maxIdlePerHost = 8
        /// Seconds a kept-alive connection may stay idle before it is
        /// closed (looked at whenever the client is used; `close()` closes
        /// every idle connection at once).
        public var idleConnectionTimeout = 60.0
        /// Hosts (scheme, host, port) whose pools are kept: beyond this,
        /// the pool used least recently that has no request in flight is
        /// closed, so a client that meets many hosts does not keep them all.
        public var maxHosts = 64
        /// How `https://` servers are checked: the system trust store by
        /// default, a CA file, or (tests only) not at all.
        public var tlsVerification = TLSVerification.systemTrustStore

        public init() {}
    }

    public let options: Options
    private var pools: [PoolKey: HostPool] = [:]
    /// When idle connections are next looked at (`evictIdle`).
    private var nextSweep = 0.0
    /// Made with the first https request; shared by every host.
    private var tlsContext: TLSContext?

    private struct PoolKey: Hashable {
        let secure: Bool
        let host: String
        let port: UInt16
    }

    public init(options: Options = Options()) {
        self.options = options
    }

    deinit { close() }

    /// Closes every idle connection.
    public func close() {
        for pool in pools.values { pool.closeIdle() }
        pools = pools.filter { !$0.value.isUnused }
    }

    /// Host pools kept (with connections idle or in use), for tests and
    /// statistics.
    public var hostCount: Int { pools.count }

    /// Closes connections idle for `idleConnectionTimeout` or longer,
    /// drops pools left with nothing, and then the pools used least
    /// recently beyond `maxHosts` (only those with no request in flight).
    public func evictIdle() { evict(keeping: options.maxHosts) }

    private func evict(keeping limit: Int) {
        let now = Hub.current.nowUpdated()
        nextSweep = now + min(1, options.idleConnectionTimeout)
        for pool in pools.values { pool.closeIdle(before: now - options.idleConnectionTimeout) }
        pools = pools.filter { !$0.value.isUnused }
        guard pools.count > limit else { return }
        let idle = pools.filter { $0.value.inUse == 0 }.sorted { $0.value.lastUsed < $1.value.lastUsed }
        for (key, pool) in idle.prefix(pools.count - limit) {
            pool.closeIdle()
            pools[key] = nil
        }
    }

    // MARK: - Requests

    public func get(_ url: String, headers: HTTPHeaders = [:]) throws -> HTTPClientResponse {
        try send(method: "GET", url: url, headers: headers)
    }

    public func head(_ url: String, headers: HTTPHeaders = [:]) throws -> HTTPClientResponse {
        try send(method: "HEAD", url: url, headers: headers)
    }

    public func post(_ url: String, body: [UInt8], contentType: String = "application/octet-stream",
                     headers: HTTPHeaders = [:]) throws -> HTTPClientResponse {
        var h = headers
        h.set("Content-Type", contentType)
        return try send(method: "POST", url: url, headers: h, body: body)
    }

    /// Sends a request and returns the final response (after redirects).
    public func send(method: String, url: String, headers: HTTPHeaders = [:], body: [UInt8] = []) throws
        -> HTTPClientResponse {
        try run(url: url) { try self.follow(method: method, url: $0, headers: headers, body: body, sink: nil) }
    }

    /// Sends a request and hands the final response's body to `chunk` as
    /// it arrives (decoded from gzip or deflate), in pieces of at most
    /// 64 KiB, instead of keeping it: a body of any size passes in
    /// constant memory (`limits.maxBodyBytes` does not apply; the caller
    /// bounds what it keeps). `head` sees the final response first (after
    /// redirects, body empty) and says whether to read its body; `chunk`
    /// returns false to stop reading. Either way the connection is then
    /// closed, not reused, and the response returned has `bodyCut` set
    /// (`bodyBytes` counts what was handed over). `exchange`, if given,
    /// sees every request and response of the call (redirects included)
    /// as the bytes that crossed the connection. Errors thrown by the
    /// closures end the request and are rethrown. Hub thread only.
    public func stream(method: String = "GET", url: String, headers: HTTPHeaders = [:], body: [UInt8] = [],
                       exchange: ((HTTPExchange) throws -> Void)? = nil,
                       head: (HTTPClientResponse) throws -> Bool,
                       chunk: (UnsafeRawBufferPointer) throws -> Bool) throws -> HTTPClientResponse {
        try withoutActuallyEscaping(head) { head in
            try withoutActuallyEscaping(chunk) { chunk in
                let sink = BodySink(head: head, chunk: chunk, exchange: exchange)
                return try run(url: url) { try self.follow(method: method, url: $0, headers: headers, body: body, sink: sink) }
            }
        }
    }

    /// `request` on the parsed URL, within `totalTimeout`.
    private func run(url: String, _ request: (RequestURL) throws -> HTTPClientResponse) throws -> HTTPClientResponse {
        guard let parsed = RequestURL(url) else { throw HTTPClientError(url: url, kind: .invalidURL) }
        guard let total = options.totalTimeout else { return try request(parsed) }
        guard let response = try withTimeout(total, otherwise: { nil }, { try request(parsed) }) else {
            throw HTTPClientError(url: url, kind: .timedOut(phase: "total", seconds: total))
        }
        return response
    }

    /// Where a streamed response goes.
    private struct BodySink {
        let head: (HTTPClientResponse) throws -> Bool
        let chunk: (UnsafeRawBufferPointer) throws -> Bool
        let exchange: ((HTTPExchange) throws -> Void)?
    }

    /// Whether `follow` goes on from a response with this status and headers.
    private func redirects(_ status: Int, _ headers: HTTPHeaders) -> Bool {
        options.followRedirects && [301, 302, 303, 307, 308].contains(status) && headers["Location"] != nil
    }

    /// Headers that carry credentials, dropped on a redirect to another
    /// origin (as browsers and curl do).
    static let credentialHeaders = ["Authorization", "Proxy-Authorization", "Cookie"]
    /// Headers about a request's body, dropped when a redirect turns it
    /// into a GET (the Fetch standard's request-body-header names).
    static let bodyHeaders = ["Content-Type", "Content-Encoding", "Content-Language", "Content-Location"]

    private func follow(method: String, url start: RequestURL, headers: HTTPHeaders, body: [UInt8], sink: BodySink?) throws
        -> HTTPClientResponse {
        var headers = headers
        var url = start
        var method = method
        var body = body
        var seen: Set<String> = []
        var chain: [URL] = []
        while true {
            var response = try once(method: method, url: url, headers: headers, body: body, sink: sink)
            response.redirects = chain
            guard redirects(response.status, response.headers), let location = response.headers["Location"] else {
                return response
            }
            guard let here = URL(string: url.text),
                  let nextURL = URL(string: location, relativeTo: here)?.absoluteURL,
                  let scheme = nextURL.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let next = RequestURL(nextURL.absoluteString) else {
                throw HTTPClientError(url: url.text, kind: .invalidRedirect(location: location))
            }
            if chain.count >= options.maxRedirects {
                throw HTTPClientError(url: start.text, kind: .tooManyRedirects(limit: options.maxRedirects))
            }
            if !options.allowCrossHostRedirects, next.host.lowercased() != url.host.lowercased() {
                throw HTTPClientError(url: url.text, kind: .crossHostRedirect(to: next.text))
            }
            if url.scheme == "https" && next.scheme == "http" && !options.allowInsecureRedirects {
                throw HTTPClientError(url: url.text, kind: .insecureRedirect(to: next.text))
            }
            if !next.isSameOrigin(as: url) {
                // Credentials stay with the origin they were given for.
                for name in HTTPClient.credentialHeaders { headers.remove(name) }
            }
            if seen.isEmpty { seen.insert(start.text) }
            guard seen.insert(next.text).inserted else {
                throw HTTPClientError(url: start.text, kind: .redirectLoop(at: next.text))
            }
            // 303, and 301/302 after a POST, turn into a GET without body
            // (and without the headers that described it; HEAD stays HEAD).
            if (response.status == 303 && method != "HEAD")
                || ((response.status == 301 || response.status == 302) && method == "POST") {
                method = "GET"
                body = []
                for name in HTTPClient.bodyHeaders { headers.remove(name) }
            }
            chain.append(here)
            url = next
        }
    }

    // MARK: - One exchange

    private func once(method: String, url: RequestURL, headers: HTTPHeaders, body: [UInt8], sink: BodySink?) throws
        -> HTTPClientResponse {
        let text = url.text
        guard url.scheme == "http" || url.scheme == "https" else {
            throw HTTPClientError(url: text, kind: .unsupportedScheme(url.scheme))
        }
        let secure = url.scheme == "https"
        let host = url.host
        let port = url.port
        let key = PoolKey(secure: secure, host: host.lowercased(), port: port)
        if Hub.current.now >= nextSweep { evictIdle() }
        let pool: HostPool
        if let p = pools[key] {
            pool = p
        } else {
            // Room for one more host.
            if pools.count >= options.maxHosts { evict(keeping: max(0, options.maxHosts - 1)) }
            var context: TLSContext?
            if secure {
                if tlsContext == nil {
                    do {
                        tlsContext = try TLSContext.client(verification: options.tlsVerification)
                    } catch let e as TLSError {
                        throw HTTPClientError(url: text, kind: .tls(e))
                    }
                }
                context = tlsContext
            }
            pool = HostPool(host: host, port: port, tls: context, options: options)
            pools[key] = pool
        }

        for (n, v) in headers where !HTTPHeaders.isSendableName(n) || !HTTPHeaders.isSendableValue(v) {
            throw HTTPClientError(url: text, kind: .invalidHeader(name: n))
        }
        if !HTTPHeaders.isSendableValue(options.userAgent) {
            throw HTTPClientError(url: text, kind: .invalidHeader(name: "User-Agent"))
        }
        var request: [UInt8] = []
        request.reserveCapacity(128 + url.target.utf8.count + body.count)
        func line(_ parts: String...) {
            for p in parts { request.append(contentsOf: p.utf8) }
            request.append(contentsOf: [0x0D, 0x0A])
        }
        line(method, " ", url.target, " HTTP/1.1")
        if port == (secure ? 443 : 80) { line("Host: ", host) } else { line("Host: ", host, ":", String(port)) }
        var names = Set<String>()
        for (n, _) in headers { names.insert(n.lowercased()) }
        if !names.contains("user-agent") { line("User-Agent: ", options.userAgent) }
        if options.decompress && !names.contains("accept-encoding") { line("Accept-Encoding: gzip, deflate") }
        for (n, v) in headers { line(n, ": ", v) }
        if !body.isEmpty || method == "POST" || method == "PUT" { line("Content-Length: ", String(body.count)) }
        line()
        request.append(contentsOf: body)

        let started = Hub.current.nowUpdated()
        let replayable = HTTPClient.isIdempotent(method: method, headers: headers)
        var attempt = 0
        while true {
            attempt += 1
            let (connection, reused) = try pool.acquire(url: text)
            var keep = false
            // Whether any byte of the request may have reached the server.
            var written = false
            defer { pool.release(connection, keep: keep) }
            do {
                do {
                    try send(request, on: connection, written: &written)
                } catch let e as SocketError {
                    if case .timedOut(let s) = e.reason { throw HTTPClientError(url: text, kind: .timedOut(phase: "write", seconds: s)) }
                    throw HTTPClientError(url: text, kind: .connection(e))
                } catch let e as TLSError {
                    throw HTTPClientError(url: text, kind: .tls(e))
                }
                var raw: [UInt8]? = sink?.exchange == nil ? nil : []
                var (response, keepAlive) = try readResponse(connection, head: method == "HEAD", url: text,
                                                             sink: sink, raw: &raw)
                keep = keepAlive
                if let raw, let observe = sink?.exchange {
                    try observe(HTTPExchange(url: text, remoteAddress: connection.socket.peerAddress?.host, request: request,
                                             response: raw, complete: !response.bodyCut))
                }
                if response.streamed {
                    // The body went to the sink, decoded on the way.
                } else if options.decompress, let encoding = response.headers["Content-Encoding"] {
                    do {
                        response.body = try ContentDecoding.decode(response.body, encoding: encoding,
                                                                   limit: options.limits.maxBodyBytes)
                    } catch {
                        throw HTTPClientError(url: text, kind: .decoding("\(error)"))
                    }
                }
                response.urlString = text
                response.seconds = Hub.current.nowUpdated() - started
                return response
            } catch let e as HTTPClientError where reused && attempt == 1 && e.isStaleConnection
                        && (replayable || !written) {
                // A kept-alive connection the server had closed: once more
                // on a new one, if sending twice is harmless.
                continue
            }
        }
    }

    /// Whether sending the request twice is harmless (RFC 9110 section
    /// 9.2.2), or the caller says so with an idempotency key.
    static func isIdempotent(method: String, headers: HTTPHeaders) -> Bool {
        ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(method)
            || headers["Idempotency-Key"] != nil || headers["X-Idempotency-Key"] != nil
    }

    /// Sends `request`; `written` turns true once a byte of it may have
    /// left (over TLS, from the start: a record may be partly sent).
    private func send(_ request: [UInt8], on connection: HostPool.Connection, written: inout Bool) throws {
        if connection.tls != nil {
            written = true
            try connection.transport.sendAll(request, timeout: options.readTimeout)
            return
        }
        try request.withUnsafeBytes { all in
            let first = try connection.socket.send(all, timeout: options.readTimeout)
            written = true
            if first < all.count {
                try connection.socket.sendAll(UnsafeRawBufferPointer(rebasing: all[first...]), timeout: options.readTimeout)
            }
        }
    }

    /// The request target (percent-encoded path and query) of an absolute
    /// URL string: what follows the authority, without the fragment.
    static func requestTarget(of absolute: String) -> String {
        // Bytes, not Characters: once per request.
        let u = absolute.utf8
        guard let colon = u.firstIndex(of: UInt8(ascii: ":")),
              u[colon...].starts(with: "://".utf8) else { return "/" }
        var rest = u[u.index(colon, offsetBy: 3)...]
        if let hash = rest.firstIndex(of: UInt8(ascii: "#")) { rest = rest[..<hash] }
        guard let start = rest.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }) else { return "/" }
        let target = String(Substring(rest[start...]))
        return target.utf8.first == UInt8(ascii: "?") ? "/" + target : target
    }

    private func readResponse(_ c: HostPool.Connection, head: Bool, url: String, sink: BodySink?,
                              raw: inout [UInt8]?) throws -> (HTTPClientResponse, Bool) {
        let parser = HTTPMessageParser(.response, limits: options.limits)
        parser.expectNoBody = head
        // The final response's body streams to the sink; a redirect's is
        // read whole (it is small, and the connection stays usable).
        if sink != nil {
            parser.streamsBody = { [unowned self] status, headers in
                status >= 200 && !self.redirects(status, headers)
            }
        }
        var stream: StreamedBody?
        var received = 0
        while true {
            let n: Int
            do {
                n = try c.buffer.withUnsafeMutableBytes { try c.transport.recv(into: $0, timeout: options.readTimeout) }
            } catch let e as SocketError {
                if case .timedOut(let s) = e.reason { throw HTTPClientError(url: url, kind: .timedOut(phase: "read", seconds: s)) }
                throw HTTPClientError(url: url, kind: .connection(e), bytesReceived: received)
            } catch let e as TLSError {
                throw HTTPClientError(url: url, kind: .tls(e), bytesReceived: received)
            }
            if n == 0 {
                do {
                    try parser.finish()
                } catch let e as HTTPParseError {
                    throw HTTPClientError(url: url, kind: e.kind == .truncated && received == 0 ? .closedBeforeResponse : .parse(e),
                                          bytesReceived: received)
                }
                if let stream, let r = parser.takeResponses().last {
                    return (try stream.end(r, parser.takeStreamedBody(), url: url), false)
                }
                if let r = parser.takeResponses().last { return (HTTPClientResponse(r), false) }
                throw HTTPClientError(url: url, kind: .closedBeforeResponse, bytesReceived: received)
            }
            received += n
            if raw != nil { c.buffer.withUnsafeBytes { raw!.append(contentsOf: $0[0..<n]) } }
            do {
                try c.buffer.withUnsafeBytes { try parser.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            } catch let e as HTTPParseError {
                throw HTTPClientError(url: url, kind: .parse(e), bytesReceived: received)
            }
            if let sink, stream == nil, let h = parser.head, h.status >= 200, !redirects(h.status, h.headers) {
                // The final response's head: the sink decides.
                var response = HTTPClientResponse(status: h.status, reason: h.reason, headers: h.headers)
                response.urlString = url
                let s = try StreamedBody(response, sink: sink, decompress: options.decompress, url: url)
                stream = s
                if try !sink.head(response) {
                    return (s.cut(), false)
                }
            }
            if let stream {
                let more = try stream.deliver(parser.takeStreamedBody(), url: url)
                if !more { return (stream.cut(), false) }
            }
            let responses = parser.takeResponses()
            // 1xx answers come before the real one.
            if let r = responses.last(where: { !(100..<200).contains($0.status) }) {
                let keep = parser.keepAlive && !parser.inMessage
                if let stream { return (try stream.end(r, [], url: url), keep) }
                return (HTTPClientResponse(r), keep)
            }
        }
    }

    /// The final response's body on its way to a sink.
    private final class StreamedBody {
        private var response: HTTPClientResponse
        private let sink: BodySink
        private let decoder: StreamingDecoder

        init(_ response: HTTPClientResponse, sink: BodySink, decompress: Bool, url: String) throws {
            self.response = response
            self.sink = sink
            do {
                decoder = try StreamingDecoder(encoding: decompress ? response.headers["Content-Encoding"] ?? "" : "")
            } catch {
                throw HTTPClientError(url: url, kind: .decoding("\(error)"))
            }
        }

        /// Hands `bytes` on; false when the sink wants no more.
        func deliver(_ bytes: [UInt8], url: String) throws -> Bool {
            guard !bytes.isEmpty else { return true }
            do {
                return try bytes.withUnsafeBytes { try decoder.push($0, to: sink.chunk) }
            } catch let e as ContentDecoding.Failure {
                throw HTTPClientError(url: url, kind: .decoding("\(e)"))
            }
        }

        /// The body was stopped early: what the sink got.
        func cut() -> HTTPClientResponse {
            response.streamed = true
            response.bodyCut = true
            response.bodyBytes = decoder.decodedCount
            return response
        }

        /// The response completed (`last`: its last body bytes).
        func end(_ complete: HTTPResponse, _ last: [UInt8], url: String) throws -> HTTPClientResponse {
            guard try deliver(last, url: url) else { return cut() }
            do { try decoder.finish() } catch { throw HTTPClientError(url: url, kind: .decoding("\(error)")) }
            response.headers = complete.headers
            response.streamed = true
            response.bodyBytes = decoder.decodedCount
            return response
        }
    }
}
