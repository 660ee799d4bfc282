import Foundation
import GreenHTTP

/// Resolution of the common, simple links without Foundation: an
/// absolute path ("/a/b.html") or a relative one ("b.html", "../b.html"),
/// made only of characters that need no escaping, with an optional query
/// of "=&" pairs; a fragment-only link; an absolute URL already in
/// normal form. Dot segments are removed as RFC 3986 (section 5.2.4)
/// says. Anything else goes the careful way (nil here). The result equals
/// what `URL` resolution plus `URLNormalizer` gives.
struct FastResolver {
    /// "http://host[:port]", normalized.
    let origin: [UInt8]
    /// The base's directory: "/a/" for "/a/page.html".
    let directory: [UInt8]
    /// The base itself, normalized: what a fragment-only link ("#part")
    /// resolves to.
    let page: String

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
        page = text
    }

    /// Whether `text` is already in `URLNormalizer`'s form, judged
    /// cheaply: lowercase http(s) scheme and host, no default port, a
    /// path, no fragment, no user info, no empty query.
    static func looksNormalized(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { u in
            guard case let (secure, hostStart)? = URLBytes.httpScheme(of: u) else { return false }
            var i = hostStart
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
        // "#part": this very page (documentation pages link to their own
        // sections by the hundred).
        if start < end, href[start] == UInt8(ascii: "#") { return page }
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
        // An absolute URL already in normal form is its own resolution.
        if u[0] == UInt8(ascii: "h") {
            let absolute = String(decoding: u, as: UTF8.self)
            if FastResolver.looksNormalized(absolute) { return absolute }
        }
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
