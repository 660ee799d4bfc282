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
/// come first served). Bodies may be sized or chunked and are decoded from
/// gzip or deflate. Redirects are followed up to `maxRedirects`, loops are
/// refused, and cross-host redirects only when allowed. Every failure is an
/// `HTTPClientError` naming the URL. Confined to one hub's thread (one
/// client per hub).
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
        /// Whether a redirect may lead to another host.
        public var allowCrossHostRedirects = true
        /// Limits on the responses; `maxBodyBytes` also bounds decoded
        /// (decompressed) bodies.
        public var limits = HTTPLimits(maxHeaderBytes: 64 * 1024, maxHeaderCount: 200, maxBodyBytes: 32 * 1024 * 1024)
        /// Asks for gzip/deflate and decodes it.
        public var decompress = true
        public var userAgent = "swift-green/0.1"
        /// Idle connections kept per host.
        public var maxIdlePerHost = 8
        /// How `https://` servers are checked: the system trust store by
        /// default, a CA file, or (tests only) not at all.
        public var tlsVerification = TLSVerification.systemTrustStore

        public init() {}
    }

    public let options: Options
    private var pools: [PoolKey: HostPool] = [:]
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

    private func follow(method: String, url start: RequestURL, headers: HTTPHeaders, body: [UInt8], sink: BodySink?) throws
        -> HTTPClientResponse {
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
            if seen.isEmpty { seen.insert(start.text) }
            guard seen.insert(next.text).inserted else {
                throw HTTPClientError(url: start.text, kind: .redirectLoop(at: next.text))
            }
            // 303, and 301/302 after a POST, turn into a GET without body.
            if response.status == 303 || ((response.status == 301 || response.status == 302) && method == "POST") {
                method = "GET"
                body = []
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
        let pool: HostPool
        if let p = pools[key] {
            pool = p
        } else {
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
        var attempt = 0
        while true {
            attempt += 1
            let (connection, reused) = try pool.acquire(url: text)
            var keep = false
            defer { pool.release(connection, keep: keep) }
            do {
                do {
                    try connection.transport.sendAll(request, timeout: options.readTimeout)
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
            } catch let e as HTTPClientError where reused && attempt == 1 && e.isStaleConnection {
                // A kept-alive connection the server had closed: once more
                // on a new one.
                continue
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

/// One request and its response as the bytes that crossed the
/// connection (chunked framing and content coding as sent), for archives
/// such as WARC files. A response cut short (`complete` false) holds what
/// was read.
public struct HTTPExchange: Sendable {
    /// The URL requested.
    public let url: String
    /// The server's IP address, when connected over IP.
    public let remoteAddress: String?
    public let request: [UInt8]
    public let response: [UInt8]
    public let complete: Bool
}

/// A response as the client returns it.
public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders
    /// The body, decoded from gzip/deflate when it was encoded.
    public var body: [UInt8]
    /// The URL that answered (after redirects), as text.
    public var urlString: String?
    /// The URL that answered (after redirects).
    public var url: URL? { urlString.flatMap { URL(string: $0) } }
    /// The URLs redirected from, in order.
    public var redirects: [URL] = []
    /// Seconds the last exchange took.
    public var seconds = 0.0
    /// The body went to a `stream` call's sink instead of `body`.
    public var streamed = false
    /// The sink stopped the body before its end.
    public var bodyCut = false
    /// Body bytes (decoded) handed to the sink.
    public var bodyBytes = 0

    init(_ r: HTTPResponse) {
        status = r.status
        reason = r.reason
        headers = r.headers
        body = r.body
    }

    init(status: Int, reason: String, headers: HTTPHeaders) {
        self.status = status
        self.reason = reason
        self.headers = headers
        body = []
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The media type without parameters, lowercased ("text/html").
    public var mediaType: String? {
        guard let value = headers["Content-Type"] else { return nil }
        let type = value.utf8.split(separator: UInt8(ascii: ";"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        let trimmed = type.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
        // ASCII lowercase.
        return String(decoding: trimmed.map { (65...90).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}

/// A request that failed, naming the URL and why.
public struct HTTPClientError: Error, CustomStringConvertible {
    public enum Kind: Sendable {
        case invalidURL
        case unsupportedScheme(String)
        case connection(SocketError)
        case timedOut(phase: String, seconds: Double)
        case parse(HTTPParseError)
        case closedBeforeResponse
        case decoding(String)
        case tooManyRedirects(limit: Int)
        case redirectLoop(at: String)
        case crossHostRedirect(to: String)
        case invalidRedirect(location: String)
        /// The TLS handshake (a certificate that does not verify, named
        /// why) or TLS on an established connection failed.
        case tls(TLSError)
        /// A header name or value the request cannot carry: a control
        /// character (a CR or LF would start another header line), or a
        /// name with a colon or white space.
        case invalidHeader(name: String)
    }

    public let url: String
    public let kind: Kind
    var bytesReceived = 0

    init(url: String, kind: Kind, bytesReceived: Int = 0) {
        self.url = url
        self.kind = kind
        self.bytesReceived = bytesReceived
    }

    /// A reused connection that turned out closed before any answer.
    var isStaleConnection: Bool {
        guard bytesReceived == 0 else { return false }
        switch kind {
        case .closedBeforeResponse: return true
        case .connection(let e):
            return e.errno == ECONNRESET || e.errno == EPIPE || e.reason == .closed
        case .tls(let e): return e.kind == .io
        default: return false
        }
    }

    public var description: String {
        let why: String
        switch kind {
        case .invalidURL: why = "not a usable URL"
        case .unsupportedScheme(let s): why = "unsupported scheme \"\(s)\""
        case .connection(let e): why = "\(e)"
        case .timedOut(let phase, let s): why = "\(phase) timeout after \(s) s"
        case .parse(let e): why = "\(e)"
        case .closedBeforeResponse: why = "the server closed the connection without a response"
        case .decoding(let d): why = d
        case .tooManyRedirects(let n): why = "more than \(n) redirects"
        case .redirectLoop(let at): why = "redirect loop at \(at)"
        case .crossHostRedirect(let to): why = "redirect to another host (\(to)) not allowed"
        case .tls(let e): why = "\(e)"
        case .invalidRedirect(let l): why = "unusable redirect Location \"\(l)\""
        case .invalidHeader(let n): why = "header \(n.debugDescription) cannot be sent: a control character, or a colon or space in its name"
        }
        return "\(url): \(why)"
    }
}

/// An absolute http(s) URL taken apart for a request. The common form
/// (lowercase scheme, a host name or IPv4 address, an optional port, and
/// only characters a URL may hold unescaped) is read off the bytes; any
/// other goes through Foundation's `URL`, which also percent-encodes what
/// needs it.
struct RequestURL {
    /// The absolute URL as sent (what `URL.absoluteString` gives).
    let text: String
    /// Lowercase: "http" or "https" (or another, refused later).
    let scheme: String
    let host: String
    let port: UInt16
    /// Path and query: "/a/b?c".
    let target: String

    init?(_ string: String) {
        if let quick = RequestURL(quick: string) {
            self = quick
            return
        }
        self.init(foundationOnly: string)
    }

    /// The quick reading alone (for differential checks).
    init?(quickOnly string: String) { self.init(quick: string) }

    /// Foundation's reading alone.
    init?(foundationOnly string: String) {
        guard let url = URL(string: string), let scheme = url.scheme?.lowercased(),
              let host = url.host, !host.isEmpty else { return nil }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        guard let p = UInt16(exactly: port) else { return nil }
        let text = url.absoluteString
        self.init(text: text, scheme: scheme, host: host, port: p, target: HTTPClient.requestTarget(of: text))
    }

    private init(text: String, scheme: String, host: String, port: UInt16, target: String) {
        self.text = text
        self.scheme = scheme
        self.host = host
        self.port = port
        self.target = target
    }

    private init?(quick string: String) {
        var string = string
        guard let (hostRange, port, https) = string.withUTF8({ RequestURL.scan($0) }) else { return nil }
        let u = string.utf8
        let host = String(Substring(u[u.index(u.startIndex, offsetBy: hostRange.lowerBound)..<u.index(u.startIndex, offsetBy: hostRange.upperBound)]))
        self.init(text: string, scheme: https ? "https" : "http", host: host,
                  port: port ?? (https ? 443 : 80), target: HTTPClient.requestTarget(of: string))
    }

    /// Checks the common form and finds the host's bytes and the port.
    private static func scan(_ u: UnsafeBufferPointer<UInt8>) -> (Range<Int>, UInt16?, Bool)? {
        let https: Bool
        if u.count >= 8 && u[..<8].elementsEqual("https://".utf8) {
            https = true
        } else if u.count >= 7 && u[..<7].elementsEqual("http://".utf8) {
            https = false
        } else {
            return nil
        }
        let authority = https ? 8 : 7
        var i = authority
        var hostEnd = -1
        var port = 0
        // Authority: a name or IPv4 address, then ":digits" or nothing.
        while i < u.count {
            let b = u[i]
            if b == UInt8(ascii: "/") || b == UInt8(ascii: "?") || b == UInt8(ascii: "#") { break }
            if hostEnd >= 0 {
                guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
                port = port * 10 + Int(b - UInt8(ascii: "0"))
                guard port <= 65535 else { return nil }
            } else if b == UInt8(ascii: ":") {
                hostEnd = i
            } else {
                let isName = (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                    || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
                guard isName else { return nil }
            }
            i += 1
        }
        let hasPort = hostEnd >= 0
        if !hasPort { hostEnd = i }
        guard hostEnd > authority, !hasPort || hostEnd < i - 1 else { return nil }
        // The rest: only characters a URL holds as they are, and one "#"
        // at most (URL encodes a second one, in the fragment).
        let rest = UnsafeBufferPointer(rebasing: u[i...])
        guard URLBytes.areVerbatim(rest), rest.lazy.filter({ $0 == UInt8(ascii: "#") }).count <= 1 else { return nil }
        return (authority..<hostEnd, hasPort ? UInt16(port) : nil, https)
    }
}

/// Bytes of URL text.
public enum URLBytes {
    /// Whether `bytes` are all characters a URL's path, query and fragment
    /// hold as they are (RFC 3986's unreserved and reserved ones but "["
    /// and "]", which belong to IPv6 hosts), each "%" followed by two hex
    /// digits: text that `URL` takes without re-encoding anything.
    public static func areVerbatim(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"),
                 UInt8(ascii: "@"), UInt8(ascii: "!"), UInt8(ascii: "$"),
                 UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"),
                 UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
                break
            case UInt8(ascii: "%"):
                guard i + 2 < bytes.count, isHexDigit(bytes[i + 1]), isHexDigit(bytes[i + 2]) else { return false }
            default:
                return false
            }
            i += 1
        }
        return true
    }

    static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x66)
    }
}

/// Connections to one host: idle ones for reuse, and a cap on how many
/// exist at once.
final class HostPool {
    final class Connection {
        let socket: Socket
        /// TLS on the socket, for https.
        let tls: TLSSocket?
        /// The read buffer, kept with the connection across requests.
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        init(socket: Socket, tls: TLSSocket?) {
            self.socket = socket
            self.tls = tls
        }
        var transport: any HTTPTransport { tls ?? socket }
    }

    let host: String
    let port: UInt16
    let options: HTTPClient.Options
    /// For https: the client's context, and the last session to resume.
    let tls: TLSContext?
    private var session: TLSSession?
    private var idle: [Connection] = []
    private let slots: Green.Semaphore

    init(host: String, port: UInt16, tls: TLSContext?, options: HTTPClient.Options) {
        self.host = host
        self.port = port
        self.tls = tls
        self.options = options
        slots = Green.Semaphore(value: max(1, options.maxConnectionsPerHost))
    }

    /// A connection (reused if one is idle) and whether it was reused.
    /// Waits while the host's connections are all busy.
    func acquire(url: String) throws -> (Connection, Bool) {
        try slots.acquire()
        while let c = idle.popLast() {
            // An idle connection the peer has closed reads as end of
            // stream (or has stray bytes): look without blocking or parking.
            if let tls = c.tls {
                if tls.isIdleAndOpen() { return (c, true) }
            } else {
                var byte: UInt8 = 0
                let n = recv(c.socket.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return (c, true) }
            }
            c.socket.close()
        }
        var socket: Socket?
        do {
            let s = try Socket.connect(host: host, port: port, timeout: options.connectTimeout)
            socket = s
            try? s.setNoDelay()
            var secure: TLSSocket?
            if let tls {
                let t = try TLSSocket(client: s, context: tls, serverName: host, resuming: session)
                try t.handshake(timeout: options.connectTimeout)
                secure = t
            }
            return (Connection(socket: s, tls: secure), false)
        } catch let e as SocketError {
            socket?.close()
            slots.release()
            if case .timedOut(let secs) = e.reason {
                let phase = socket == nil ? "connect" : "TLS handshake"
                throw HTTPClientError(url: url, kind: .timedOut(phase: phase, seconds: secs))
            }
            throw HTTPClientError(url: url, kind: .connection(e))
        } catch let e as TLSError {
            socket?.close()
            slots.release()
            throw HTTPClientError(url: url, kind: .tls(e))
        } catch {
            socket?.close()
            slots.release()
            throw error
        }
    }

    func release(_ c: Connection, keep: Bool) {
        if let tls = c.tls, let s = tls.session { session = s }
        if keep && !c.socket.isClosed && idle.count < options.maxIdlePerHost {
            idle.append(c)
        } else {
            c.socket.close()
        }
        slots.release()
    }

    func closeIdle() {
        for c in idle { c.socket.close() }
        idle.removeAll()
    }
}
