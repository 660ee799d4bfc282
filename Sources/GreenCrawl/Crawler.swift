import Foundation
import Glibc
import Green
import GreenHTTP

/// A polite web crawler on greenlets: up to `concurrency` pages in flight,
/// same host(s) only, robots.txt obeyed, per-host connection cap and
/// optional delay, links found by an HTML5 parser and deduplicated after
/// normalization. Each fetched URL yields one `CrawlRecord`; failures are
/// records with an `error`, and the crawl goes on.
public final class Crawler {
    public struct Options: Sendable {
        public var concurrency = 50
        public var maxPages = 1_000
        public var maxDepth = Int.max
        /// Hosts links may lead to; empty means the start URL's host only.
        public var allowedHosts: [String] = []
        public var perHost = 8
        /// Seconds between requests to one host (robots.txt may ask more).
        public var delay = 0.0
        public var timeout = 10.0
        public var obeyRobots = true
        public var userAgent = "swift-green-crawler/0.1"
        public var maxBodyBytes = 8 * 1024 * 1024

        public init() {}
    }

    public let options: Options
    private let client: HTTPClient
    private var seen = Set<String>()
    private var robots: [String: Robots] = [:]
    private var robotsFetching: [String: Event] = [:]
    private var lastFetch: [String: Double] = [:]
    private var hostLocks: [String: Lock] = [:]
    private var allowed: Set<String> = []

    /// Counters, live during the crawl.
    public private(set) var done = 0
    public private(set) var errors = 0
    public private(set) var inFlight = 0
    public private(set) var queued = 0

    public init(options: Options = Options()) {
        self.options = options
        var c = HTTPClient.Options()
        c.maxConnectionsPerHost = options.perHost
        c.readTimeout = options.timeout
        c.connectTimeout = options.timeout
        c.totalTimeout = options.timeout * 3
        c.userAgent = options.userAgent
        c.limits.maxBodyBytes = options.maxBodyBytes
        c.maxIdlePerHost = options.perHost
        client = HTTPClient(options: c)
    }

    /// Crawls from `start`, calling `record` for every fetched URL in the
    /// order they finish. Returns the summary.
    public func crawl(_ start: URL, record: (CrawlRecord) throws -> Void) throws -> CrawlSummary {
        guard let first = URLNormalizer.normalize(start) else {
            throw CrawlError(message: "not an http(s) URL: \(start)")
        }
        allowed = Set((options.allowedHosts.isEmpty ? [first.host ?? ""] : options.allowedHosts).map { $0.lowercased() })
        let frontier = JoinableQueue<(URL, Int)>()
        seen.insert(first.absoluteString)
        try frontier.put((first, 0))
        queued = 1
        let results = Queue<CrawlRecord>()
        let began = Hub.current.nowUpdated()
        let workers = Pool(size: options.concurrency)
        for _ in 0..<options.concurrency {
            try workers.spawn { [self] in
                for (url, depth) in frontier {
                    defer { try? frontier.taskDone() }
                    queued -= 1
                    inFlight += 1
                    let r = fetch(url, depth: depth)
                    inFlight -= 1
                    done += 1
                    if r.error != nil || (r.status ?? 0) >= 400 { errors += 1 }
                    if depth < options.maxDepth {
                        for text in r.found where seen.count < options.maxPages {
                            guard !seen.contains(text), let link = URL(string: text), isAllowed(link) else { continue }
                            seen.insert(text)
                            try frontier.put((link, depth + 1))
                            queued += 1
                        }
                    }
                    try results.put(r)
                }
            }
        }
        let closer = spawn {
            defer { results.close() }
            try frontier.join()
            frontier.close()
            try workers.join()
        }
        defer { if !closer.isReady { try? closer.kill() }; try? workers.kill() }
        for r in results { try record(r) }
        try closer.get()
        let seconds = Hub.current.nowUpdated() - began
        return CrawlSummary(pages: done, errors: errors, seconds: seconds)
    }

    private func isAllowed(_ url: URL) -> Bool {
        guard let host = url.host?.lowercased() else { return false }
        return allowed.contains(host)
    }

    /// Fetches one URL: robots, politeness, the request, link extraction.
    func fetch(_ url: URL, depth: Int) -> CrawlRecord {
        let started = Hub.current.nowUpdated()
        var r = CrawlRecord(url: url.absoluteString, depth: depth)
        fill(&r, url)
        r.ms = Int(((Hub.current.nowUpdated() - started) * 1000).rounded())
        return r
    }

    private func fill(_ r: inout CrawlRecord, _ url: URL) {
        do {
            let hostKey = "\(url.scheme ?? "http")://\(url.host ?? "")\(url.port.map { ":\($0)" } ?? "")"
            if options.obeyRobots {
                let rules = try robotsFor(hostKey)
                var path = url.path.isEmpty ? "/" : url.path
                if let q = url.query { path += "?" + q }
                if !rules.allows(path) {
                    r.error = "disallowed by robots.txt"
                    return
                }
            }
            try politeness(hostKey)
            let response = try client.get(url.absoluteString)
            r.status = response.status
            r.contentType = response.mediaType
            r.bytes = response.body.count
            if let final = response.url, final.absoluteString != url.absoluteString {
                r.redirectedTo = final.absoluteString
            }
            if response.status < 400, response.mediaType == "text/html" {
                let links = LinkExtractor.linkStrings(in: response.body, pageURL: response.url ?? url)
                r.links = links.count
                r.found = links
            }
        } catch {
            r.error = "\(error)"
        }
    }

    /// The host's robots.txt, fetched once (others wait for it).
    private func robotsFor(_ hostKey: String) throws -> Robots {
        if let r = robots[hostKey] { return r }
        if let fetching = robotsFetching[hostKey] {
            try fetching.wait()
            return robots[hostKey] ?? .allowAll
        }
        let event = Event()
        robotsFetching[hostKey] = event
        defer { event.set(); robotsFetching[hostKey] = nil }
        var rules = Robots.allowAll
        if let response = try? client.get(hostKey + "/robots.txt"), response.status == 200 {
            rules = Robots(parsing: response.text, userAgent: options.userAgent)
        }
        robots[hostKey] = rules
        return rules
    }

    /// Keeps the per-host delay (the larger of ours and robots.txt's).
    private func politeness(_ hostKey: String) throws {
        let delay = max(options.delay, robots[hostKey]?.crawlDelay ?? 0)
        guard delay > 0 else { return }
        let lock = hostLocks[hostKey] ?? {
            let l = Lock()
            hostLocks[hostKey] = l
            return l
        }()
        try lock.withLock {
            let now = Hub.current.nowUpdated()
            if let last = lastFetch[hostKey], now - last < delay { try Green.sleep(delay - (now - last)) }
            lastFetch[hostKey] = Hub.current.nowUpdated()
        }
    }
}

/// One fetched URL: a JSON line of the crawl's output.
public struct CrawlRecord: Sendable {
    public var url: String
    public var status: Int?
    public var contentType: String?
    public var bytes = 0
    public var depth: Int
    public var links = 0
    public var ms = 0
    public var error: String?
    public var redirectedTo: String?
    /// The links themselves, normalized (not in the JSON).
    var found: [String] = []

    public init(url: String, depth: Int) {
        self.url = url
        self.depth = depth
    }

    /// The record as one line of JSON, keys in a stable (sorted) order.
    /// Written by hand: JSONEncoder per record costs more than the page.
    public var jsonLine: String {
        var out = "{\"bytes\":\(bytes)"
        if let contentType { out += ",\"content_type\":" + CrawlRecord.quote(contentType) }
        out += ",\"depth\":\(depth)"
        if let error { out += ",\"error\":" + CrawlRecord.quote(error) }
        out += ",\"links\":\(links),\"ms\":\(ms)"
        if let redirectedTo { out += ",\"redirected_to\":" + CrawlRecord.quote(redirectedTo) }
        if let status { out += ",\"status\":\(status)" }
        out += ",\"url\":" + CrawlRecord.quote(url) + "}"
        return out
    }

    /// A JSON string literal of `s`.
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

public struct CrawlSummary: Sendable {
    public let pages: Int
    public let errors: Int
    public let seconds: Double
    public var pagesPerSecond: Double { seconds > 0 ? Double(pages) / seconds : 0 }
}

public struct CrawlError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
