import Foundation
import Green

/// Finds a site's pages through its sitemaps: those its robots.txt names
/// (`Sitemap:` lines), then `ORIGIN/sitemap.xml`, following sitemap
/// indexes depth first so pages come out in the files' order.
///
/// Bounded whatever the site serves: each sitemap is fetched at most once
/// (so an index naming itself or a cycle of indexes ends), indexes nest at
/// most `Limits.maxDepth` deep, at most `Limits.maxSitemaps` are fetched
/// and at most `Limits.maxPages` pages kept.
public enum SitemapDiscovery {
    /// Fetches a URL (following redirects, undoing Content-Encoding if the
    /// client does) and gives the final status and body. The crawler
    /// passes its own HTTP client; tests pass anything.
    public typealias Fetch = (String) throws -> (status: Int, body: [UInt8])

    public struct Limits: Sendable {
        /// Levels of index below a first sitemap: 3 fetches an index, its
        /// child indexes, theirs, and the sitemaps those name.
        public var maxDepth = 3
        /// Sitemaps fetched in all, robots.txt not counted.
        public var maxSitemaps = 1_000
        /// Page URLs kept.
        public var maxPages = 1_000_000

        public init() {}
    }

    public struct Result: Sendable {
        /// The page URLs found, normalized (`URLNormalizer`), http(s)
        /// only, each once, in the order the sitemaps list them.
        public var pages: [String] = []
        /// What could not be fetched or read, and limits reached; none is
        /// fatal. A missing `ORIGIN/sitemap.xml` is not an error (it is
        /// only a guess); a missing sitemap that robots.txt or an index
        /// names is.
        public var errors: [SitemapError] = []
        /// The sitemaps requested (answered or not), in order.
        public var sitemaps: [String] = []
    }

    /// Discovers the pages of the site at `origin` (`http://host:port`;
    /// a path is ignored).
    ///
    /// `robotsSitemaps` are the robots.txt's `Sitemap:` lines when the
    /// caller has read it already (`Robots.sitemaps`); nil fetches
    /// `ORIGIN/robots.txt` with `fetch` (a robots.txt that is missing is no
    /// error). Blocks while `fetch` does, on the calling thread (a greenlet
    /// of the hub the client belongs to).
    ///
    /// Errors thrown by `fetch` are recorded in `Result.errors`, except
    /// `GreenletExit` and `TimeoutError` (the greenlet was killed, or an
    /// outer deadline passed), which end the discovery and are rethrown.
    public static func discover(origin: String, robotsSitemaps: [String]? = nil, limits: Limits = Limits(),
                                fetch: Fetch) throws -> Result {
        var result = Result()
        guard let base = URLNormalizer.normalize(origin),
              var components = URLComponents(url: base, resolvingAgainstBaseURL: false)
        else {
            result.errors.append(SitemapError(url: origin, message: "not an http(s) origin"))
            return result
        }
        components.percentEncodedPath = ""
        components.percentEncodedQuery = nil
        components.user = nil
        components.password = nil
        let root = components.string ?? origin

        var declared = robotsSitemaps ?? []
        if robotsSitemaps == nil {
            let robotsURL = root + "/robots.txt"
            do {
                let (status, body) = try fetch(robotsURL)
                if (200..<300).contains(status) {
                    declared = Robots(parsing: String(decoding: body, as: UTF8.self), userAgent: "*").sitemaps
                }
            } catch {
                if error is GreenletExit || error is TimeoutError { throw error }
                result.errors.append(SitemapError(url: robotsURL, message: "robots.txt: \(error)"))
            }
        }

        struct Pending {
            let url: String
            let depth: Int
            /// Named by robots.txt or an index, not guessed.
            let named: Bool
        }
        var queued: Set<String> = []
        var roots: [Pending] = []
        for url in declared {
            guard let normalized = URLNormalizer.normalize(url)?.absoluteString,
                  queued.insert(normalized).inserted else { continue }
            roots.append(Pending(url: normalized, depth: 0, named: true))
        }
        let guess = root + "/sitemap.xml"
        if queued.insert(guess).inserted { roots.append(Pending(url: guess, depth: 0, named: false)) }

        var stack = Array(roots.reversed())
        var pagesSeen: Set<String> = []
        while let next = stack.popLast() {
            guard result.sitemaps.count < limits.maxSitemaps else {
                result.errors.append(SitemapError(
                    url: next.url, message: "not fetched, nor \(stack.count) more: \(limits.maxSitemaps) sitemaps fetched already"))
                break
            }
            result.sitemaps.append(next.url)
            let status: Int
            let body: [UInt8]
            do {
                (status, body) = try fetch(next.url)
            } catch {
                if error is GreenletExit || error is TimeoutError { throw error }
                result.errors.append(SitemapError(url: next.url, message: "\(error)"))
                continue
            }
            guard (200..<300).contains(status) else {
                if next.named || (status != 404 && status != 410) {
                    result.errors.append(SitemapError(url: next.url, message: "HTTP status \(status)"))
                }
                continue
            }
            let sitemap: Sitemap
            do {
                sitemap = try Sitemap(parsing: body, url: next.url)
            } catch {
                result.errors.append(error as? SitemapError ?? SitemapError(url: next.url, message: "\(error)"))
                continue
            }
            switch sitemap.kind {
            case .urlSet:
                for location in sitemap.locations {
                    guard let page = URLNormalizer.normalize(location)?.absoluteString,
                          pagesSeen.insert(page).inserted else { continue }
                    guard result.pages.count < limits.maxPages else {
                        result.errors.append(SitemapError(url: next.url, message: "\(limits.maxPages) pages found: the rest is left out"))
                        return result
                    }
                    result.pages.append(page)
                }
            case .index:
                guard next.depth < limits.maxDepth else {
                    result.errors.append(SitemapError(
                        url: next.url, message: "an index nested deeper than \(limits.maxDepth) levels: its sitemaps are not fetched"))
                    continue
                }
                var children: [Pending] = []
                for location in sitemap.locations {
                    guard let child = URLNormalizer.normalize(location)?.absoluteString,
                          queued.insert(child).inserted else { continue }
                    children.append(Pending(url: child, depth: next.depth + 1, named: true))
                }
                stack += children.reversed()
            }
        }
        return result
    }
}
