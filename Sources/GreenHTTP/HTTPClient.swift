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
/// decoded from gzip or deflate. Confined to one hub's thread (one client
/// per hub).
///
/// Every request call blocks only the calling greenlet. It throws an
/// `HTTPClientError` naming the URL for what went wrong with the request
/// (a host that does not resolve, connection, TLS, timeouts of `Options`,
/// parsing, redirects, decoding); a kill or an enclosing timeout throws
/// its interrupt, and an error thrown by a
/// closure passed in (a body producer, `stream`'s `head`, `chunk` and
/// `exchange`) is rethrown as it is.
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
    /// What a client does and how long it waits; fixed when the client is
    /// made. A value: any thread may make one.
    public struct Options: Sendable {
        /// Seconds to resolve the host and connect (every address tried
        /// included), and again for the TLS handshake.
        public var connectTimeout = 10.0
        /// Seconds any single read or write may wait.
        public var readTimeout = 30.0
        /// Seconds for the whole request, redirects included (nil: none).
        public var totalTimeout: Double?
        /// Connections open at once to one host (scheme, host, port);
        /// further requests to it wait for one, first come first served.
        public var maxConnectionsPerHost = 8
        /// Whether 301, 302, 303, 307 and 308 responses with a `Location`
        /// are followed (false: they are returned).
        public var followRedirects = true
        /// Redirects one request may follow before it fails with
        /// `.tooManyRedirects`.
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
        /// Request bodies over this many bytes, or of unknown length, are
        /// announced with `Expect: 100-continue` and sent once the server
        /// agrees (nil: never). curl's threshold.
        public var expectContinueThreshold: Int? = 1024 * 1024
        /// Seconds to wait for the server's 100 (Continue) before sending
        /// the body anyway (RFC 9110 section 10.1.1).
        public var expectContinueTimeout = 1.0
        /// Asks for gzip/deflate and decodes it.
        public var decompress = true
        /// The `User-Agent` sent when the request's headers have none.
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

        /// The defaults above; change the fields you need.
        public init() {}
    }

    /// The options it was made with.
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

    /// A client with no connection yet: they are opened as requests need
    /// them. Never blocks; use it on the thread that made it.
    public init(options: Options = Options()) {
        self.options = options
    }

    deinit { close() }

    /// Closes every idle connection; the client stays usable. Never
    /// blocks.
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
    /// Never blocks; requests do it on their own every so often.
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

    /// A GET of `url`; see `send(method:url:headers:body:)`.
    public func get(_ url: String, headers: HTTPHeaders = [:]) throws -> HTTPClientResponse {
        try send(method: "GET", url: url, headers: headers)
    }

    /// A HEAD of `url` (the response has headers and no body); see
    /// `send(method:url:headers:body:)`.
    public func head(_ url: String, headers: HTTPHeaders = [:]) throws -> HTTPClientResponse {
        try send(method: "HEAD", url: url, headers: headers)
    }

    /// A POST of `body` to `url` with `Content-Type: contentType` (which
    /// replaces one in `headers`); see `send(method:url:headers:body:)`.
    public func post(_ url: String, body: [UInt8], contentType: String = "application/octet-stream",
                     headers: HTTPHeaders = [:]) throws -> HTTPClientResponse {
        var h = headers
        h.set("Content-Type", contentType)
        return try send(method: "POST", url: url, headers: h, body: body)
    }

    /// Sends a request and returns the final response (after redirects),
    /// its body read whole (at most `limits.maxBodyBytes`, decoded). Any
    /// status is a response, not an error. Blocks only the calling
    /// greenlet; throws as the type's comment says.
    public func send(method: String, url: String, headers: HTTPHeaders = [:], body: [UInt8] = []) throws
        -> HTTPClientResponse {
        try send(method: method, url: url, headers: headers, body: .bytes(body))
    }

    /// Sends a request whose body streams (pieces from a producer, or a
    /// file; see `HTTPRequestBody`) and returns the final response, its
    /// body read whole. Blocks only the calling greenlet; throws as the
    /// type's comment says (a producer's error as it is).
    public func send(method: String, url: String, headers: HTTPHeaders = [:], body: HTTPRequestBody) throws
        -> HTTPClientResponse {
        try run(url: url) { url in
            switch try self.follow(method: method, url: url, headers: headers, body: body, streaming: false, observe: nil) {
            case .whole(let r): return r
            case .stream: preconditionFailure("swift-green: a response streamed that was not asked to")
            }
        }
    }

    /// Sends a request and returns the final response (after redirects)
    /// with its body unread: read it as it arrives from the
    /// `HTTPResponseStream` (`next()`, `read(into:)`, a `for` loop), in
    /// constant memory whatever its size (`limits.maxBodyBytes` applies
    /// only to what `readAll` keeps). `totalTimeout` bounds the time until
    /// the response's head; each read of the body waits at most
    /// `readTimeout`. Read the body to its end or `close()` the stream:
    /// the connection is held until then. Blocks only the calling
    /// greenlet until the head has come; throws as the type's comment
    /// says.
    public func open(method: String = "GET", url: String, headers: HTTPHeaders = [:],
                     body: HTTPRequestBody = .empty) throws -> HTTPResponseStream {
        try open(method: method, url: url, headers: headers, body: body, observe: nil)
    }

    private func open(method: String, url: String, headers: HTTPHeaders, body: HTTPRequestBody,
                      observe: ((HTTPExchange) throws -> Void)?) throws -> HTTPResponseStream {
        try run(url: url) { url in
            switch try self.follow(method: method, url: url, headers: headers, body: body, streaming: true, observe: observe) {
            case .stream(let s): return s
            case .whole(let r):
                // A redirect not followed (its body was read whole).
                return HTTPResponseStream(whole: r, url: r.urlString ?? url.text, limit: self.options.limits.maxBodyBytes)
            }
        }
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
    /// closures end the request and are rethrown. Blocks only the calling
    /// greenlet; throws as the type's comment says. Hub thread only.
    public func stream(method: String = "GET", url: String, headers: HTTPHeaders = [:], body: [UInt8] = [],
                       exchange: ((HTTPExchange) throws -> Void)? = nil,
                       head: (HTTPClientResponse) throws -> Bool,
                       chunk: (UnsafeRawBufferPointer) throws -> Bool) throws -> HTTPClientResponse {
        let s = try open(method: method, url: url, headers: headers, body: .bytes(body), observe: exchange)
        defer { s.close() }
        guard try head(s.response) else {
            s.close()
            return s.response
        }
        while let piece = try s.next() {
            guard try piece.withUnsafeBytes({ try chunk($0) }) else {
                s.close()
                return s.response
            }
        }
        return s.response
    }

    /// `request` on the parsed URL, within `totalTimeout`.
    private func run<R>(url: String, _ request: (RequestURL) throws -> R) throws -> R {
        guard let parsed = RequestURL(url) else { throw HTTPClientError(url: url, kind: .invalidURL) }
        guard let total = options.totalTimeout else { return try request(parsed) }
        guard let response = try withTimeout(total, otherwise: { nil }, { try request(parsed) }) else {
            throw HTTPClientError(url: url, kind: .timedOut(phase: "total", seconds: total))
        }
        return response
    }

    /// What a request came to: a response read whole (the body not
    /// streamed, or a redirect not followed), or a final response whose
    /// body streams.
    private enum Outcome {
        case whole(HTTPClientResponse)
        case stream(HTTPResponseStream)
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

    private func follow(method: String, url start: RequestURL, headers: HTTPHeaders, body: HTTPRequestBody,
                        streaming: Bool, observe: ((HTTPExchange) throws -> Void)?) throws -> Outcome {
        var headers = headers
        var url = start
        var method = method
        var body = body
        var seen: Set<String> = []
        var chain: [URL] = []
        while true {
            let outcome = try once(method: method, url: url, headers: headers, body: body, streaming: streaming,
                                   observe: observe)
            guard case .whole(var response) = outcome else {
                if case .stream(let s) = outcome { s.setRedirects(chain) }
                return outcome
            }
            response.redirects = chain
            guard redirects(response.status, response.headers), let location = response.headers["Location"] else {
                return .whole(response)
            }
            let keepsBody = response.status == 307 || response.status == 308
                || ((response.status == 301 || response.status == 302) && method != "POST")
            if keepsBody && !body.isReplayable && !body.isEmpty {
                // The body streamed from a producer: it cannot go again.
                return .whole(response)
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
                body = .empty
                for name in HTTPClient.bodyHeaders { headers.remove(name) }
            }
            chain.append(here)
            url = next
        }
    }

    // MARK: - One exchange

    private func pool(for url: RequestURL) throws -> HostPool {
        guard url.scheme == "http" || url.scheme == "https" else {
            throw HTTPClientError(url: url.text, kind: .unsupportedScheme(url.scheme))
        }
        let secure = url.scheme == "https"
        let key = PoolKey(secure: secure, host: url.host.lowercased(), port: url.port)
        if Hub.current.now >= nextSweep { evictIdle() }
        if let p = pools[key] { return p }
        // Room for one more host.
        if pools.count >= options.maxHosts { evict(keeping: max(0, options.maxHosts - 1)) }
        var context: TLSContext?
        if secure {
            if tlsContext == nil {
                do {
                    tlsContext = try TLSContext.client(verification: options.tlsVerification)
                } catch let e as TLSError {
                    throw HTTPClientError(url: url.text, kind: .tls(e))
                }
            }
            context = tlsContext
        }
        let pool = HostPool(host: url.host, port: url.port, tls: context, options: options)
        pools[key] = pool
        return pool
    }

    /// The request's header section.
    private func requestHead(method: String, url: RequestURL, headers: HTTPHeaders, plan: BodyPlan) throws -> [UInt8] {
        for (n, v) in headers where !HTTPHeaders.isSendableName(n) || !HTTPHeaders.isSendableValue(v) {
            throw HTTPClientError(url: url.text, kind: .invalidHeader(name: n))
        }
        if !HTTPHeaders.isSendableValue(options.userAgent) {
            throw HTTPClientError(url: url.text, kind: .invalidHeader(name: "User-Agent"))
        }
        var request: [UInt8] = []
        request.reserveCapacity(256 + url.target.utf8.count)
        func line(_ parts: String...) {
            for p in parts { request.append(contentsOf: p.utf8) }
            request.append(contentsOf: [0x0D, 0x0A])
        }
        let secure = url.scheme == "https"
        line(method, " ", url.target, " HTTP/1.1")
        if url.port == (secure ? 443 : 80) { line("Host: ", url.host) } else { line("Host: ", url.host, ":", String(url.port)) }
        var names = Set<String>()
        for (n, _) in headers { names.insert(n.lowercased()) }
        if !names.contains("user-agent") { line("User-Agent: ", options.userAgent) }
        if options.decompress && !names.contains("accept-encoding") { line("Accept-Encoding: gzip, deflate") }
        for (n, v) in headers {
            // The client frames the body itself.
            let lower = n.lowercased()
            if lower == "content-length" || lower == "transfer-encoding" || lower == "expect" { continue }
            line(n, ": ", v)
        }
        request.append(contentsOf: plan.headerLines.utf8)
        line()
        return request
    }

    private func once(method: String, url: RequestURL, headers: HTTPHeaders, body: HTTPRequestBody, streaming: Bool,
                      observe: ((HTTPExchange) throws -> Void)?) throws -> Outcome {
        let text = url.text
        let pool = try pool(for: url)
        let started = Hub.current.nowUpdated()
        let replayable = HTTPClient.isIdempotent(method: method, headers: headers) && body.isReplayable
        var attempt = 0
        while true {
            attempt += 1
            // A file is opened again for each attempt.
            let plan = try BodyPlan(body, method: method, options: options, url: text)
            let head = try requestHead(method: method, url: url, headers: headers, plan: plan)
            let (connection, reused) = try pool.acquire(url: text)
            let streamsFinal: ((Int, HTTPHeaders) -> Bool)? = streaming
                ? { [unowned self] status, headers in status >= 200 && !self.redirects(status, headers) } : nil
            let call = HTTPClientCall(pool: pool, connection: connection, url: text, options: options,
                                      head: method == "HEAD", streamsFinal: streamsFinal, observed: observe != nil)
            do {
                try call.sendRequest(head: head, body: body, plan: plan)
                switch try call.readHead() {
                case .streaming(let status, let reason, let headers):
                    var response = HTTPClientResponse(status: status, reason: reason, headers: headers)
                    response.urlString = text
                    response.seconds = Hub.current.nowUpdated() - started
                    return .stream(try HTTPResponseStream(call: call, response: response, decompress: options.decompress,
                                                          observe: observe, limit: options.limits.maxBodyBytes))
                case .complete(let r):
                    var response = HTTPClientResponse(r)
                    call.release(keep: call.keepAlive)
                    try call.report(to: observe, complete: true)
                    if options.decompress, let encoding = response.headers["Content-Encoding"] {
                        do {
                            response.body = try ContentDecoding.decode(response.body, encoding: encoding,
                                                                       limit: options.limits.maxBodyBytes)
                        } catch {
                            throw HTTPClientError(url: text, kind: .decoding("\(error)"))
                        }
                    }
                    response.urlString = text
                    response.seconds = Hub.current.nowUpdated() - started
                    return .whole(response)
                }
            } catch let e as HTTPClientError where reused && attempt == 1 && e.isStaleConnection
                        && (replayable || !call.written) {
                // A kept-alive connection the server had closed: once more
                // on a new one, if sending twice is harmless.
                call.release(keep: false)
                continue
            } catch {
                call.release(keep: false)
                throw error
            }
        }
    }

    /// Whether sending the request twice is harmless (RFC 9110 section
    /// 9.2.2), or the caller says so with an idempotency key.
    static func isIdempotent(method: String, headers: HTTPHeaders) -> Bool {
        ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(method)
            || headers["Idempotency-Key"] != nil || headers["X-Idempotency-Key"] != nil
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

}
