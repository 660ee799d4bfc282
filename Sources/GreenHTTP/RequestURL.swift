import Foundation

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

    /// Whether `other` has the same origin (RFC 6454: scheme, host and
    /// port; the host compared without case).
    func isSameOrigin(as other: RequestURL) -> Bool {
        scheme == other.scheme && port == other.port && host.lowercased() == other.host.lowercased()
    }

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
        guard case let (https, authority)? = URLBytes.httpScheme(of: u) else { return nil }
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
