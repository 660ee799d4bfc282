import Foundation

/// One fetched URL: a JSON line of the crawl's output.
public struct CrawlRecord: Sendable, Codable {
    public var url: String
    public var status: Int?
    public var contentType: String?
    public var bytes = 0
    public var depth: Int
    public var links = 0
    public var ms = 0
    public var error: String?
    public var redirectedTo: String?
    /// Attempts made after the first (connection errors, 429, 5xx).
    public var retries = 0
    /// The body was cut at the crawl's `maxBytes`: `bytes` is where.
    public var truncated = false
    /// The links themselves, normalized (not in the JSON).
    package var found: [String] = []

    public init(url: String, depth: Int) {
        self.url = url
        self.depth = depth
    }

    /// The record as one line of JSON, keys in a stable (sorted) order.
    /// Written by hand, on bytes: JSONEncoder per record costs more than
    /// the page.
    public var jsonLine: String {
        var out: [UInt8] = []
        out.reserveCapacity(96 + url.utf8.count + (contentType?.utf8.count ?? 0) + (error?.utf8.count ?? 0)
                            + (redirectedTo?.utf8.count ?? 0))
        CrawlRecord.key("{\"bytes\":", bytes, &out)
        if let contentType { CrawlRecord.key(",\"content_type\":", contentType, &out) }
        CrawlRecord.key(",\"depth\":", depth, &out)
        if let error { CrawlRecord.key(",\"error\":", error, &out) }
        CrawlRecord.key(",\"links\":", links, &out)
        CrawlRecord.key(",\"ms\":", ms, &out)
        if let redirectedTo { CrawlRecord.key(",\"redirected_to\":", redirectedTo, &out) }
        if retries > 0 { CrawlRecord.key(",\"retries\":", retries, &out) }
        if let status { CrawlRecord.key(",\"status\":", status, &out) }
        if truncated { out.append(contentsOf: ",\"truncated\":true".utf8) }
        CrawlRecord.key(",\"url\":", url, &out)
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    private static func key(_ key: StaticString, _ value: Int, _ out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            var n = 0
            repeat {
                d[n] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                n += 1
            } while magnitude > 0
            while n > 0 {
                n -= 1
                out.append(d[n])
            }
        }
    }

    private static func key(_ key: StaticString, _ value: String, _ out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        quote(value, into: &out)
    }

    /// A JSON string literal of `s`.
    static func quote(_ s: String) -> String {
        var out: [UInt8] = []
        quote(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `s` as a JSON string literal: quotes, backslashes and
    /// control characters escaped, everything else (UTF-8) as it is.
    static func quote(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(b)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(b)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 15)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
