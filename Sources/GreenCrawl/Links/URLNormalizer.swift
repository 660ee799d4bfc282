import Foundation

/// URL normalization for deduplication: http(s) only, lowercase scheme and
/// host, no default port, no fragment, "/" for an empty path.
public enum URLNormalizer {
    public static func normalize(_ url: URL) -> URL? {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: true),
              let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty else { return nil }
        c.scheme = scheme
        c.host = host.lowercased()
        if (scheme == "http" && c.port == 80) || (scheme == "https" && c.port == 443) { c.port = nil }
        c.fragment = nil
        if c.percentEncodedPath.isEmpty { c.percentEncodedPath = "/" }
        if c.percentEncodedQuery == "" { c.percentEncodedQuery = nil }
        return c.url
    }

    public static func normalize(_ text: String) -> URL? {
        URL(string: text).flatMap(normalize)
    }
}
