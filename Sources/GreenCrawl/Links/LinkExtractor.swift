import Foundation

/// Links of a whole HTML document in memory, by `HTMLLinkParser`
/// (libxml2): every `<a href>`, `<area href>`, `<iframe src>` and `<frame
/// src>`, resolved against the page's URL or its `<base href>`,
/// normalized, in document order, without duplicates; `rel=nofollow` and
/// robots meta tags obeyed unless `followNofollow`. Never by regular
/// expressions. A crawler fetching pages feeds `HTMLLinkParser` as the
/// body arrives instead.
public enum LinkExtractor {
    public static func links(in html: [UInt8], pageURL: URL, followNofollow: Bool = false) -> [URL] {
        linkStrings(in: html, pageURL: pageURL.absoluteString, followNofollow: followNofollow).compactMap { URL(string: $0) }
    }

    /// The links as normalized absolute URL strings (what `links` returns,
    /// without building a `URL` for each: a crawler deduplicates first).
    public static func linkStrings(in html: [UInt8], pageURL: URL, followNofollow: Bool = false) -> [String] {
        linkStrings(in: html, pageURL: pageURL.absoluteString, followNofollow: followNofollow)
    }

    /// `linkStrings` with the page's absolute URL as text. A page the
    /// parser gave up on part way yields the links found before that.
    public static func linkStrings(in html: [UInt8], pageURL: String, charset: String? = nil,
                                   followNofollow: Bool = false) -> [String] {
        let parser = HTMLLinkParser(pageURL: pageURL, charset: charset, followNofollow: followNofollow)
        do {
            return try html.withUnsafeBytes { try parser.finish(last: $0) }
        } catch let e as LinkExtractionError {
            return e.links
        } catch {
            return []
        }
    }
}
