import Foundation

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
