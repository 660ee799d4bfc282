import Foundation

/// A response as the client returns it. A value: any thread.
public struct HTTPClientResponse: Sendable {
    /// The status code (200, 404, ...).
    public var status: Int
    /// The reason phrase the server sent ("OK").
    public var reason: String
    /// The response's header fields, as received (`Content-Encoding`
    /// stays even when the body was decoded).
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
