import CGumbo
import Foundation

/// Links of an HTML document by Google's HTML5 parser, gumbo: the
/// extractor the crawler used before libxml2, kept as the oracle that the
/// differential tests and `green-bench`'s `link_extract_mb_per_s` compare
/// libxml2's extraction with. The same elements (`<a href>`, `<area
/// href>`, `<iframe src>`, `<frame src>`, the first `<base href>`),
/// resolved and deduplicated by the same `LinkResolver`; `rel=nofollow`
/// and robots meta tags are not looked at.
public enum GumboLinkExtractor {
    /// Documents up to this size are parsed into an arena (see
    /// `green_gumbo_arena`); larger ones with malloc, so that the arena's
    /// slack never multiplies a huge page.
    static let arenaLimit = 1 << 20

    /// `linkStrings` with the page's absolute URL as text (the crawler's
    /// URLs are strings already). `arena: false` parses with gumbo's own
    /// allocator (malloc and a free per node), as gumbo ships: the baseline
    /// `green-bench` also compares with.
    public static func linkStrings(in html: [UInt8], pageURL: String, arena: Bool = true) -> [String] {
        guard !html.isEmpty else { return [] }
        var extractor = Extraction(pageURL: pageURL)
        html.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { chars in
                if arena && chars.count <= arenaLimit {
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

    /// One document's walk: the link values as the parser holds them
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
                if element.tag == GUMBO_TAG_A || element.tag == GUMBO_TAG_AREA,
                   let a = gumbo_get_attribute(&attributes, "href") {
                    hrefs.append(a.pointee.value)
                } else if element.tag == GUMBO_TAG_IFRAME || element.tag == GUMBO_TAG_FRAME,
                          let a = gumbo_get_attribute(&attributes, "src") {
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
            var resolver = LinkResolver(pageURL: pageURL, base: base)
            for h in hrefs {
                resolver.add(UnsafeBufferPointer(start: UnsafeRawPointer(h).assumingMemoryBound(to: UInt8.self),
                                                 count: strlen(h)))
            }
            out = resolver.links
            hrefs.removeAll()
        }

        func finish() -> [String] { out }
    }
}
