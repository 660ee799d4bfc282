import CGumbo
import Foundation

/// Links of an HTML document, found by a real HTML5 parser (gumbo), never
/// by regular expressions: every `<a href>`, resolved against the page's
/// URL or its `<base href>`, normalized, in document order, without
/// duplicates.
public enum LinkExtractor {
    public static func links(in html: [UInt8], pageURL: URL) -> [URL] {
        linkStrings(in: html, pageURL: pageURL).compactMap { URL(string: $0) }
    }

    /// The links as normalized absolute URL strings (what `links` returns,
    /// without building a `URL` for each: a crawler deduplicates first).
    public static func linkStrings(in html: [UInt8], pageURL: URL) -> [String] {
        guard !html.isEmpty else { return [] }
        var hrefs: [String] = []
        var base: String?
        html.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { chars in
                guard let output = gumbo_parse_with_options(green_gumbo_default_options(), chars.baseAddress,
                                                            chars.count) else { return }
                defer { gumbo_destroy_output(green_gumbo_default_options(), output) }
                walk(output.pointee.root, hrefs: &hrefs, base: &base)
            }
        }
        let baseURL = base.flatMap { URL(string: $0.trimmingHTMLSpace(), relativeTo: pageURL)?.absoluteURL } ?? pageURL
        let fast = FastResolver(base: baseURL)
        var seen = Set<String>()
        var out: [String] = []
        for h in hrefs {
            let trimmed = h.trimmingHTMLSpace()
            guard !trimmed.isEmpty else { continue }
            let normal: String
            if let quick = fast?.resolve(trimmed) {
                normal = quick
            } else {
                guard let resolved = URL(string: trimmed, relativeTo: baseURL)?.absoluteURL
                        ?? URL(string: trimmed.addingPercentEncoding(withAllowedCharacters: .urlFragmentAllowed) ?? "",
                               relativeTo: baseURL)?.absoluteURL,
                      let n = URLNormalizer.normalize(resolved) else { continue }
                normal = n.absoluteString
            }
            if seen.insert(normal).inserted { out.append(normal) }
        }
        return out
    }

    private static func walk(_ node: UnsafeMutablePointer<GumboNode>?, hrefs: inout [String], base: inout String?) {
        // Iterative, so that a deeply nested page cannot overflow a stack.
        var stack: [UnsafeMutablePointer<GumboNode>] = []
        if let node { stack.append(node) }
        while let n = stack.popLast() {
            guard n.pointee.type == GUMBO_NODE_ELEMENT || n.pointee.type == GUMBO_NODE_TEMPLATE else { continue }
            let element = n.pointee.v.element
            var attributes = element.attributes
            if element.tag == GUMBO_TAG_A, let a = gumbo_get_attribute(&attributes, "href") {
                hrefs.append(String(cString: a.pointee.value))
            } else if element.tag == GUMBO_TAG_BASE, base == nil, let a = gumbo_get_attribute(&attributes, "href") {
                base = String(cString: a.pointee.value)
            }
            let children = element.children
            // Reversed, so that popping visits them in document order.
            var i = Int(children.length)
            while i > 0 {
                i -= 1
                if let child = children.data[i] {
                    stack.append(child.assumingMemoryBound(to: GumboNode.self))
                }
            }
        }
    }
}

/// Resolution of the common, simple links without Foundation: an
/// absolute path ("/a/b.html"), or a plain relative name ("b.html",
/// "dir/b.html"), made only of characters that need no escaping, with no
/// dot segments. Anything else goes the careful way (nil here). The result
/// equals what `URL` resolution plus `URLNormalizer` gives.
struct FastResolver {
    /// "http://host[:port]", normalized.
    let origin: String
    /// The base's directory: "/a/" for "/a/page.html".
    let directory: String

    init?(base: URL) {
        // The crawler's own URLs are already normalized: read the parts
        // off the string; anything else goes through the normalizer first.
        var text = base.absoluteString
        if !FastResolver.looksNormalized(text) {
            guard let n = URLNormalizer.normalize(base) else { return nil }
            text = n.absoluteString
        }
        guard let authority = text.afterSchemeSeparator() else { return nil }
        let afterScheme = text.utf8[authority...]
        guard let pathStart = afterScheme.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let hostPart = afterScheme[..<pathStart]
        guard !hostPart.isEmpty, !hostPart.contains(where: { $0 == UInt8(ascii: "@") || (65...90).contains($0) })
        else { return nil }
        origin = String(Substring(text.utf8[..<pathStart]))
        var path = afterScheme[pathStart...]
        if let q = path.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) { path = path[..<q] }
        guard let slash = path.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        directory = String(Substring(path[...slash]))
        guard FastResolver.isPlain(Substring(directory)) else { return nil }
    }

    /// Whether `text` is already in `URLNormalizer`'s form, judged
    /// cheaply: lowercase http(s) scheme and host, no default port, a
    /// path, no fragment, no user info.
    static func looksNormalized(_ text: String) -> Bool {
        let u = text.utf8
        let https = text.hasPrefix("https://")
        guard https || text.hasPrefix("http://") else { return false }
        let rest = u.dropFirst(https ? 8 : 7)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { return false }
        let host = rest[..<slash]
        if host.isEmpty || host.contains(where: { $0 == UInt8(ascii: "@") || (65...90).contains($0) }) { return false }
        if host.last == UInt8(ascii: ":") { return false }
        let port = https ? Array(":443".utf8) : Array(":80".utf8)
        if host.count > port.count && host.suffix(port.count).elementsEqual(port) { return false }
        return !u.contains(UInt8(ascii: "#")) && u.last != UInt8(ascii: "?")
    }

    func resolve(_ href: String) -> String? {
        // Bytes, not Characters: this runs for every link of every page.
        var u = Substring(href).utf8
        if let hash = u.firstIndex(of: UInt8(ascii: "#")) { u = u[..<hash] }
        if u.last == UInt8(ascii: "?") { u = u.dropLast() }
        guard let first = u.first else { return nil }
        let path: String
        if first == UInt8(ascii: "/") {
            if u.dropFirst().first == UInt8(ascii: "/") { return nil }
            guard FastResolver.isPlain(u) else { return nil }
            path = String(Substring(u))
        } else {
            // A scheme ("mailto:"), a query or dot segment: the careful way.
            guard first != UInt8(ascii: "?"), first != UInt8(ascii: "."), !u.contains(UInt8(ascii: ":")),
                  FastResolver.isPlain(u) else { return nil }
            path = directory + String(Substring(u))
        }
        return origin + path
    }

    /// Only unreserved characters, "/", and a query of "=&" pairs; no dot
    /// segments, no percent escapes, no empty query.
    static func isPlain(_ s: Substring) -> Bool { isPlain(s.utf8) }

    static func isPlain(_ bytes: Substring.UTF8View) -> Bool {
        var previous: UInt8 = 0
        var inQuery = false
        for b in bytes {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"):
                break
            case UInt8(ascii: "."):
                if previous == UInt8(ascii: "/") && !inQuery { return false }   // "/." or "/.."
            case UInt8(ascii: "/"):
                break
            case UInt8(ascii: "?"):
                if inQuery { return false }
                inQuery = true
            case UInt8(ascii: "="), UInt8(ascii: "&"):
                if !inQuery { return false }
            default:
                return false
            }
            previous = b
        }
        return true
    }
}

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

extension String {
    /// Without leading and trailing ASCII whitespace (HTML's definition of
    /// space around attribute values), without Foundation's bridging.
    func trimmingHTMLSpace() -> String {
        let u = utf8
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0C || b == 0x0D }
        guard let first = u.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = u.lastIndex(where: { !isSpace($0) })!
        if first == u.startIndex && last == u.index(before: u.endIndex) { return self }
        return String(self[first...last])
    }
}

extension String {
    /// The index just after "://", found without Foundation.
    func afterSchemeSeparator() -> String.Index? {
        let u = utf8
        var i = u.startIndex
        while i < u.endIndex {
            if u[i] == UInt8(ascii: ":") {
                let j = u.index(after: i)
                if j < u.endIndex, u[j] == UInt8(ascii: "/") {
                    let k = u.index(after: j)
                    if k < u.endIndex, u[k] == UInt8(ascii: "/") { return u.index(after: k) }
                }
                return nil
            }
            i = u.index(after: i)
        }
        return nil
    }
}
