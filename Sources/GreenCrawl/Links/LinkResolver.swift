import Foundation

/// Turns a page's link values (hrefs as the HTML parser gives them) into
/// normalized absolute URL strings, in document order, without
/// duplicates. The common simple links take `FastResolver`'s byte-level
/// path; anything else is resolved by `URL` and normalized by
/// `URLNormalizer`. Both parsers (libxml2's and the gumbo oracle) resolve
/// through this, so they differ only in what they find.
struct LinkResolver {
    private let baseText: String
    private let fast: FastResolver?
    private var baseURL: URL?
    private var seen = Set<String>()
    private var rawSeen = Set<String>()
    private(set) var links: [String] = []

    /// `base` is the document's `<base href>` value, if any, resolved
    /// against the page's URL.
    init(pageURL: String, base: String?) {
        var baseText = pageURL
        if let base, let page = URL(string: pageURL),
           let b = URL(string: base.trimmingHTMLSpace(), relativeTo: page)?.absoluteURL {
            baseText = b.absoluteString
        }
        self.baseText = baseText
        fast = FastResolver(base: baseText)
    }

    mutating func add(_ href: UnsafeBufferPointer<UInt8>) {
        // The same href again (a page's many "#section" or "../index.html"
        // links) resolves to the same URL: skip it before resolving.
        // Short ones only: a String of up to 15 bytes is stored inline.
        if href.count <= 15 && !rawSeen.insert(String(decoding: href, as: UTF8.self)).inserted { return }
        let normal: String
        if let quick = fast?.resolve(href) {
            normal = quick
        } else {
            let trimmed = String(decoding: href, as: UTF8.self).trimmingHTMLSpace()
            guard !trimmed.isEmpty else { return }
            if baseURL == nil { baseURL = URL(string: baseText) }
            guard let baseURL,
                  let resolved = URL(string: trimmed, relativeTo: baseURL)?.absoluteURL
                    ?? URL(string: trimmed.addingPercentEncoding(withAllowedCharacters: .urlFragmentAllowed) ?? "",
                           relativeTo: baseURL)?.absoluteURL,
                  let n = URLNormalizer.normalize(resolved) else { return }
            normal = n.absoluteString
        }
        // A page's first few links are deduplicated by comparison
        // (cheaper than hashing); a set takes over for long lists.
        if links.count < 16 {
            if !links.contains(normal) { links.append(normal) }
            if links.count == 16 { seen = Set(links) }
        } else if seen.insert(normal).inserted {
            links.append(normal)
        }
    }
}
