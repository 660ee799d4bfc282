import CGumbo
import Foundation

/// Links of an HTML document, found by a real HTML5 parser (gumbo), never
/// by regular expressions: every `<a href>`, resolved against the page's
/// URL or its `<base href>`, normalized, in document order, without
/// duplicates.
public enum LinkExtractor {
    public static func links(in html: [UInt8], pageURL: URL) -> [URL] {
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
        let baseURL = base.flatMap { URL(string: $0, relativeTo: pageURL)?.absoluteURL } ?? pageURL
        var seen = Set<String>()
        var out: [URL] = []
        for h in hrefs {
            let trimmed = h.trimmingHTMLSpace()
            guard !trimmed.isEmpty,
                  let resolved = URL(string: trimmed, relativeTo: baseURL)?.absoluteURL
                    ?? URL(string: trimmed.addingPercentEncoding(withAllowedCharacters: .urlFragmentAllowed) ?? "",
                           relativeTo: baseURL)?.absoluteURL,
                  let normal = URLNormalizer.normalize(resolved),
                  seen.insert(normal.absoluteString).inserted else { continue }
            out.append(normal)
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
