import CGumbo
import Foundation
import GreenHTTP

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
        linkStrings(in: html, pageURL: pageURL.absoluteString)
    }

    /// Documents up to this size are parsed into an arena (see
    /// `green_gumbo_arena`); larger ones with malloc, so that the arena's
    /// slack never multiplies a huge page.
    static let arenaLimit = 1 << 20

    /// `linkStrings` with the page's absolute URL as text (the crawler's
    /// URLs are strings already).
    public static func linkStrings(in html: [UInt8], pageURL: String) -> [String] {
        guard !html.isEmpty else { return [] }
        var extractor = Extraction(pageURL: pageURL)
        html.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { chars in
                if chars.count <= arenaLimit {
                    var arena = green_gumbo_arena()
                    defer { green_gumbo_arena_release(&arena) }
                    guard let output = green_gumbo_parse_in_arena(chars.baseAddress, chars.count, &arena) else { return }
                    extractor.walk(output.pointee.root)
                } else {
                    guard let output = gumbo_parse_with_options(green_gumbo_default_options(), chars.baseAddress,
                                                                chars.count) else { return }
                    defer { gumbo_destroy_output(green_gumbo_default_options(), output) }
                    extractor.walk(output.pointee.root)
                }
            }
        }
        return extractor.finish()
    }

    /// One document's walk: the `<a href>` values as the parser holds them
    /// (C strings, valid until the tree is freed), resolved when the walk
    /// is over, because a `<base href>` anywhere in the document applies to
    /// every link.
    private struct Extraction {
        let pageURL: String
        var hrefs: [UnsafePointer<CChar>] = []
        var base: String?
        var out: [String] = []

        init(pageURL: String) { self.pageURL = pageURL }

        mutating func walk(_ node: UnsafeMutablePointer<GumboNode>?) {
            // Iterative, so that a deeply nested page cannot overflow a stack.
            var stack: [UnsafeMutablePointer<GumboNode>] = []
            if let node { stack.append(node) }
            while let n = stack.popLast() {
                guard n.pointee.type == GUMBO_NODE_ELEMENT || n.pointee.type == GUMBO_NODE_TEMPLATE else { continue }
                let element = n.pointee.v.element
                var attributes = element.attributes
                if element.tag == GUMBO_TAG_A, let a = gumbo_get_attribute(&attributes, "href") {
                    hrefs.append(a.pointee.value)
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
            resolveAll()
        }

        /// Resolves the hrefs while the tree (which holds their bytes) lives.
        private mutating func resolveAll() {
            guard !hrefs.isEmpty else { return }
            var baseText = pageURL
            if let base, let page = URL(string: pageURL),
               let b = URL(string: base.trimmingHTMLSpace(), relativeTo: page)?.absoluteURL {
                baseText = b.absoluteString
            }
            let fast = FastResolver(base: baseText)
            var baseURL: URL?
            var seen = Set<String>()
            for h in hrefs {
                let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(h).assumingMemoryBound(to: UInt8.self),
                                                count: strlen(h))
                let normal: String
                if let quick = fast?.resolve(bytes) {
                    normal = quick
                } else {
                    let trimmed = String(decoding: bytes, as: UTF8.self).trimmingHTMLSpace()
                    guard !trimmed.isEmpty else { continue }
                    if baseURL == nil { baseURL = URL(string: baseText) }
                    guard let baseURL,
                          let resolved = URL(string: trimmed, relativeTo: baseURL)?.absoluteURL
                            ?? URL(string: trimmed.addingPercentEncoding(withAllowedCharacters: .urlFragmentAllowed) ?? "",
                                   relativeTo: baseURL)?.absoluteURL,
                          let n = URLNormalizer.normalize(resolved) else { continue }
                    normal = n.absoluteString
                }
                // A page's first few links are deduplicated by comparison
                // (cheaper than hashing); a set takes over for long lists.
                if out.count < 16 {
                    if !out.contains(normal) { out.append(normal) }
                    if out.count == 16 { seen = Set(out) }
                } else if seen.insert(normal).inserted {
                    out.append(normal)
                }
            }
            hrefs.removeAll()
        }

        func finish() -> [String] { out }
    }
}

/// Resolution of the common, simple links without Foundation: an
/// absolute path ("/a/b.html") or a relative one ("b.html", "../b.html"),
/// made only of characters that need no escaping, with an optional query
/// of "=&" pairs. Dot segments are removed as RFC 3986 (section 5.2.4)
/// says. Anything else goes the careful way (nil here). The result equals
/// what `URL` resolution plus `URLNormalizer` gives.
struct FastResolver {
    /// "http://host[:port]", normalized.
    let origin: [UInt8]
    /// The base's directory: "/a/" for "/a/page.html".
    let directory: [UInt8]

    init?(base: String) {
        // The crawler's own URLs are already normalized: read the parts
        // off the string; anything else goes through the normalizer first.
        var text = base
        if !FastResolver.looksNormalized(text) {
            guard let n = URLNormalizer.normalize(text) else { return nil }
            text = n.absoluteString
        }
        guard let (origin, directory) = text.withUTF8({ u -> ([UInt8], [UInt8])? in
            // Normalized: "http(s)://" then the authority up to the first "/".
            guard let colon = u.firstIndex(of: UInt8(ascii: ":")), colon + 3 < u.count else { return nil }
            let authority = colon + 3
            var pathStart = authority
            while pathStart < u.count, u[pathStart] != UInt8(ascii: "/") { pathStart += 1 }
            guard pathStart < u.count, pathStart > authority else { return nil }
            var end = pathStart
            var slash = pathStart
            while end < u.count, u[end] != UInt8(ascii: "?"), u[end] != UInt8(ascii: "#") {
                if u[end] == UInt8(ascii: "/") { slash = end }
                end += 1
            }
            let directory = UnsafeBufferPointer(rebasing: u[pathStart...slash])
            guard FastResolver.isPlain(directory) else { return nil }
            return (Array(UnsafeBufferPointer(rebasing: u[..<pathStart])), Array(directory))
        }) else { return nil }
        self.origin = origin
        self.directory = directory
    }

    /// Whether `text` is already in `URLNormalizer`'s form, judged
    /// cheaply: lowercase http(s) scheme and host, no default port, a
    /// path, no fragment, no user info, no empty query.
    static func looksNormalized(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { u in
            let secure: Bool
            if u.count >= 8 && u[..<8].elementsEqual("https://".utf8) {
                secure = true
            } else if u.count >= 7 && u[..<7].elementsEqual("http://".utf8) {
                secure = false
            } else {
                return false
            }
            var i = secure ? 8 : 7
            let hostStart = i
            while i < u.count, u[i] != UInt8(ascii: "/") {
                let b = u[i]
                if b == UInt8(ascii: "@") || (b >= 65 && b <= 90) || b == UInt8(ascii: "#") || b == UInt8(ascii: "?") {
                    return false
                }
                i += 1
            }
            guard i < u.count, i > hostStart, u[i - 1] != UInt8(ascii: ":") else { return false }
            let defaultPort = (secure ? ":443" : ":80").utf8
            if i - hostStart > defaultPort.count && u[(i - defaultPort.count)..<i].elementsEqual(defaultPort) {
                return false
            }
            while i < u.count {
                if u[i] == UInt8(ascii: "#") { return false }
                i += 1
            }
            // Nothing the normalizer would re-encode.
            return u[u.count - 1] != UInt8(ascii: "?") && URLBytes.areVerbatim(u)
        }
    }

    /// `href` resolved, or nil when it needs the careful way. Bytes, not
    /// Characters: this runs for every link of every page.
    func resolve(_ href: UnsafeBufferPointer<UInt8>) -> String? {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0C || b == 0x0D }
        var start = 0
        var end = href.count
        while start < end, isSpace(href[start]) { start += 1 }
        while end > start, isSpace(href[end - 1]) { end -= 1 }
        var i = start
        while i < end, href[i] != UInt8(ascii: "#") { i += 1 }
        end = i
        // An empty query ("page?") goes; a "?" inside a query stays.
        var firstQuestion = start
        while firstQuestion < end, href[firstQuestion] != UInt8(ascii: "?") { firstQuestion += 1 }
        if firstQuestion == end - 1 { end -= 1 }
        guard end > start else { return nil }
        let u = UnsafeBufferPointer(rebasing: href[start..<end])
        // "//host": another authority; "?q": a query on the base; anything
        // with a scheme, escapes or unusual characters: the careful way.
        if u[0] == UInt8(ascii: "/"), u.count > 1, u[1] == UInt8(ascii: "/") { return nil }
        guard u[0] != UInt8(ascii: "?"), FastResolver.isPlain(u) else { return nil }
        var query = 0
        while query < u.count, u[query] != UInt8(ascii: "?") { query += 1 }
        let relative = u[0] != UInt8(ascii: "/")
        let capacity = origin.count + (relative ? directory.count : 0) + u.count + 1
        return String(unsafeUninitializedCapacity: capacity) { out in
            var w = 0
            func put(_ bytes: UnsafeBufferPointer<UInt8>) {
                guard let from = bytes.baseAddress, !bytes.isEmpty else { return }
                (out.baseAddress! + w).update(from: from, count: bytes.count)
                w += bytes.count
            }
            origin.withUnsafeBufferPointer(put)
            let pathStart = w
            if relative { directory.withUnsafeBufferPointer(put) }
            put(UnsafeBufferPointer(rebasing: u[..<query]))
            w = FastResolver.removeDotSegments(in: out, from: pathStart, to: w)
            put(UnsafeBufferPointer(rebasing: u[query...]))
            return w
        }
    }

    /// RFC 3986's remove_dot_segments, in place, on the absolute path
    /// `b[start..<end]` ("/a/./b/../c" -> "/a/c"); returns the new end.
    /// Writing never overtakes reading, so one buffer does.
    static func removeDotSegments(in b: UnsafeMutableBufferPointer<UInt8>, from start: Int, to end: Int) -> Int {
        var w = start
        var r = start + 1   // past the leading "/"
        var endsInDirectory = false
        while r <= end {
            var j = r
            while j < end, b[j] != UInt8(ascii: "/") { j += 1 }
            let length = j - r
            if length == 1 && b[r] == UInt8(ascii: ".") {
                endsInDirectory = true
            } else if length == 2 && b[r] == UInt8(ascii: ".") && b[r + 1] == UInt8(ascii: ".") {
                // Drop the last output segment ("/name"), if any.
                while w > start {
                    w -= 1
                    if b[w] == UInt8(ascii: "/") { break }
                }
                endsInDirectory = true
            } else {
                b[w] = UInt8(ascii: "/")
                w += 1
                if length > 0 && w != r {
                    (b.baseAddress! + w).update(from: b.baseAddress! + r, count: length)
                }
                w += length
                endsInDirectory = false
            }
            r = j + 1
        }
        if endsInDirectory || w == start {
            b[w] = UInt8(ascii: "/")
            w += 1
        }
        return w
    }

    /// Only unreserved characters, "/", and a query of "=&" pairs; no
    /// percent escapes, no empty query (so no ":" either).
    static func isPlain(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var inQuery = false
        for b in bytes {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"),
                 UInt8(ascii: "."), UInt8(ascii: "/"):
                break
            case UInt8(ascii: "?"):
                if inQuery { return false }
                inQuery = true
            case UInt8(ascii: "="), UInt8(ascii: "&"):
                if !inQuery { return false }
            default:
                return false
            }
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

/// Checks for fuzzers: the byte-level shortcuts against Foundation. Not
/// API.
@_spi(Fuzzing) public enum CrawlFuzzing {
    /// `href` against `base` by the quick path (nil when it declines) and
    /// by `URL` plus `URLNormalizer`, the way the extractor does both.
    public static func resolve(href: String, base: String) -> (quick: String?, careful: String?) {
        var h = href
        let quick = FastResolver(base: base).flatMap { r in h.withUTF8 { r.resolve($0) } }
        let trimmed = href.trimmingHTMLSpace()
        guard !trimmed.isEmpty, let baseURL = URL(string: base),
              let resolved = URL(string: trimmed, relativeTo: baseURL)?.absoluteURL
                ?? URL(string: trimmed.addingPercentEncoding(withAllowedCharacters: .urlFragmentAllowed) ?? "",
                       relativeTo: baseURL)?.absoluteURL
        else { return (quick, nil) }
        return (quick, URLNormalizer.normalize(resolved)?.absoluteString)
    }

    /// Whether the quick test calls `text` normalized, and what the
    /// normalizer makes of it (equal to `text` when the test is right).
    public static func normalized(_ text: String) -> (looksNormalized: Bool, normalizer: String?) {
        (FastResolver.looksNormalized(text), URLNormalizer.normalize(text)?.absoluteString)
    }
}
