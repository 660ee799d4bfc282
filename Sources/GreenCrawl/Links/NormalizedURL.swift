import Foundation

/// The parts of a URL string already in `URLNormalizer`'s form
/// ("http://host[:port]/path[?query]"), read off its bytes.
struct NormalizedURL {
    /// "http://host[:port]": the robots.txt and politeness key.
    let origin: String
    let host: String
    /// The path and query, as robots.txt rules match them.
    let robotsPath: String

    init?(_ text: String) {
        guard FastResolver.looksNormalized(text), let authority = text.afterSchemeSeparator() else { return nil }
        let u = text.utf8
        guard let pathStart = u[authority...].firstIndex(of: UInt8(ascii: "/")) else { return nil }
        origin = String(Substring(u[..<pathStart]))
        let hostAndPort = u[authority..<pathStart]
        if hostAndPort.first == UInt8(ascii: "[") {
            // An IPv6 literal: the host as URL gives it.
            guard let h = URL(string: text)?.host else { return nil }
            host = h
        } else {
            let colon = hostAndPort.lastIndex(of: UInt8(ascii: ":"))
            host = String(Substring(hostAndPort[..<(colon ?? pathStart)]))
        }
        let target = u[pathStart...]
        if target.contains(UInt8(ascii: "%")) {
            // Rules match decoded paths (as URL.path gives them).
            guard let url = URL(string: text) else { return nil }
            robotsPath = (url.path.isEmpty ? "/" : url.path) + (url.query.map { "?" + $0 } ?? "")
        } else {
            robotsPath = String(Substring(target))
        }
    }
}
