import Green

/// An HTTP/1.x request, as the server hands it to a handler (the body
/// read whole) or as a test builds one. A value: any thread.
public struct HTTPRequest: Sendable {
    /// "GET", "POST", ...
    public var method: String
    /// The request target as sent: "/path?query" (or an absolute URL).
    public var target: String
    /// The HTTP version: (1, 1) for HTTP/1.1.
    public var version: (major: Int, minor: Int)
    /// The header fields, in the order they came.
    public var headers: HTTPHeaders
    /// The body, de-chunked; empty when there is none.
    public var body: [UInt8]
    /// The client's address (set by the server).
    public var peer: SocketAddress?

    /// A request from its parts (`peer` unset).
    public init(method: String = "GET", target: String = "/", version: (major: Int, minor: Int) = (1, 1),
                headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// The path part of the target, without the query.
    public var path: Substring {
        target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    }
}

/// An HTTP/1.x response: what a server handler returns, or what the
/// message parser makes of a response. A value: any thread.
public struct HTTPResponse: Sendable {
    /// The status code.
    public var status: Int
    /// The reason phrase ("OK").
    public var reason: String
    /// The HTTP version; a server sends HTTP/1.1 whatever it says.
    public var version: (major: Int, minor: Int)
    /// The header fields. A server adds what they lack: `Content-Length`
    /// (none for 1xx, 204 and 304; for a `bodyWriter` without one,
    /// `Transfer-Encoding: chunked`), `Date`, and `Connection: close`
    /// when the connection ends.
    public var headers: HTTPHeaders
    /// The body, sent whole (ignored when `bodyWriter` is set).
    public var body: [UInt8]
    /// A server response that streams its body in chunks
    /// (`Transfer-Encoding: chunked`); `body` is then ignored.
    public var bodyWriter: (@Sendable (HTTPBodyWriter) throws -> Void)?
    /// For a 101 (Switching Protocols) answer to a request with
    /// `Upgrade` (WebSocket and the like): once the response is sent, the
    /// server hands the connection to this closure on the connection's
    /// greenlet, and closes it when the closure returns.
    public var upgrade: (@Sendable (HTTPUpgradedConnection) throws -> Void)?

    /// A response; `reason` defaults to the status's usual phrase.
    public init(status: Int = 200, reason: String? = nil, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.reason = reason ?? HTTPResponse.reasonPhrase(status)
        self.version = (1, 1)
        self.headers = headers
        self.body = body
    }

    /// A response with a UTF-8 text body.
    public init(status: Int = 200, text: String, contentType: String = "text/plain; charset=utf-8") {
        self.init(status: status, headers: ["Content-Type": contentType], body: Array(text.utf8))
    }

    /// The usual reason phrase of `status` ("Not Found"), or "Status N"
    /// for one it does not know.
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status \(status)"
        }
    }
}

/// Limits on what a parser accepts; exceeding one is an `HTTPParseError`.
public struct HTTPLimits: Sendable {
    /// Bytes of the start line and header fields together.
    public var maxHeaderBytes = 64 * 1024
    /// Header fields in one message.
    public var maxHeaderCount = 100
    /// Bytes of one message's body (after de-chunking).
    public var maxBodyBytes = 16 * 1024 * 1024

    /// The limits; the defaults are the values above.
    public init(maxHeaderBytes: Int = 64 * 1024, maxHeaderCount: Int = 100, maxBodyBytes: Int = 16 * 1024 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Bytes that are not acceptable HTTP, or a message over a limit.
public struct HTTPParseError: Error, CustomStringConvertible, Equatable {
    /// What was wrong with the bytes.
    public enum Kind: Equatable, Sendable {
        /// http_parser rejected the bytes; its error name and description.
        case malformed(name: String, detail: String)
        /// The start line and header fields exceed `maxHeaderBytes`.
        case headersTooLarge(limit: Int)
        /// More header fields than `maxHeaderCount`.
        case tooManyHeaders(limit: Int)
        /// A body larger than `maxBodyBytes`.
        case bodyTooLarge(limit: Int)
        /// A request target longer than the header limit (414).
        case targetTooLong(limit: Int)
        /// A request that breaks a rule of RFC 9112 http_parser lets
        /// through (white space before a field's colon, a folded field
        /// line, a missing or repeated Host); the rule, named.
        case invalidRequest(String)
        /// The peer closed in the middle of a message.
        case truncated
    }

    /// What was wrong.
    public let kind: Kind

    /// The problem in a sentence.
    public var description: String {
        switch kind {
        case .malformed(let name, let detail): return "malformed HTTP: \(detail) (\(name))"
        case .headersTooLarge(let limit): return "HTTP header section larger than \(limit) bytes"
        case .tooManyHeaders(let limit): return "more than \(limit) HTTP header fields"
        case .bodyTooLarge(let limit): return "HTTP body larger than \(limit) bytes"
        case .targetTooLong(let limit): return "HTTP request target longer than \(limit) bytes"
        case .invalidRequest(let rule): return "malformed HTTP request: \(rule)"
        case .truncated: return "connection closed in the middle of an HTTP message"
        }
    }
}
