import Foundation
import Glibc
import Green
import GreenHTTP
import GreenTLS

/// A polite web crawler on greenlets: up to `concurrency` pages in flight,
/// same host(s) only, robots.txt obeyed, per-host connection cap and
/// optional delay, links found by an HTML5 parser and deduplicated after
/// normalization. Each fetched URL yields one `CrawlRecord`; failures are
/// records with an `error`, and the crawl goes on.
public final class Crawler {
    public struct Options: Sendable, Codable {
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
        /// OS threads that parse pages (link extraction is the crawl's
        /// main CPU cost): with 1 or more, the hub keeps fetching while
        /// pages parse on other cores; 0 parses on the hub. Crawlers asking
        /// for the same number share one pool.
        public var parseThreads = 0
        /// For https:// pages: trust the certificates in this PEM file
        /// instead of the system's.
        public var caFile: String?
        /// For https:// pages: check no certificate at all (tests only).
        public var insecureTLS = false

        public init() {}
    }

    /// A crawl shared in Redis takes max-pages, max-depth, hosts, delay
    /// and robots from the crawl's settings.
    public internal(set) var options: Options
    private let client: HTTPClient
    /// Where pages parse (nil: on the hub).
    private let parsers: ThreadPool?

    /// Parse pools, one per size asked for, shared by every crawler of the
    /// process: a pool's threads live as long as the program, so crawlers
    /// that come and go must not each start their own. Pages queue in the
    /// pool, so its threads parse back to back while the hub fetches.
    private static func parsePool(size: Int) -> ThreadPool {
        parsePoolsLock.lock()
        defer { parsePoolsLock.unlock() }
        if let pool = parsePools[size] { return pool }
        let pool = ThreadPool(size: size)
        parsePools[size] = pool
        return pool
    }
    nonisolated(unsafe) private static var parsePools: [Int: ThreadPool] = [:]
    private static let parsePoolsLock = NSLock()
    private var seen = Set<String>()
    private var robots: [String: Robots] = [:]
    private var robotsFetching: [String: Event] = [:]
    private var lastFetch: [String: Double] = [:]
    private var hostLocks: [String: Lock] = [:]
    var allowed: Set<String> = []
    /// The Redis frontier of a shared crawl, while one runs.
    var shared: RedisFrontier?
    /// `stop()` was called; `wakeFeeder` is set to tell the shared crawl's
    /// feeder.
    var stopRequested = false
    var wakeFeeder: Event?

    /// Counters, live during the crawl.
    public internal(set) var done = 0
    public internal(set) var errors = 0
    public internal(set) var inFlight = 0
    public internal(set) var queued = 0
    /// CPU seconds the parse threads spent on this crawl's pages (0 when
    /// pages parse on the hub).
    public internal(set) var parseCPUSeconds = 0.0

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
        c.tlsVerification = options.insecureTLS ? .insecureNoVerificationForTestsOnly
            : options.caFile.map { .caFile($0) } ?? .systemTrustStore
        client = HTTPClient(options: c)
        parsers = options.parseThreads > 0 ? Crawler.parsePool(size: options.parseThreads) : nil
    }

    /// Crawls from `start`, calling `record` for every fetched URL in the
    /// order they finish. Returns the summary.
    public func crawl(_ start: URL, record: (CrawlRecord) throws -> Void) throws -> CrawlSummary {
        guard let first = URLNormalizer.normalize(start) else {
            throw CrawlError(message: "not an http(s) URL: \(start)")
        }
        allowed = Set((options.allowedHosts.isEmpty ? [first.host ?? ""] : options.allowedHosts).map { $0.lowercased() })
        // The frontier holds URL strings, normalized (by URLNormalizer or
        // the link extractor): their parts are read off the bytes, and no
        // Foundation URL is built for a page on the common path.
        let frontier = JoinableQueue<(String, Int)>()
        seen.insert(first.absoluteString)
        try frontier.put((first.absoluteString, 0))
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
                            guard !seen.contains(text), isAllowed(text) else { continue }
                            seen.insert(text)
                            try frontier.put((text, depth + 1))
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

    func isAllowed(_ url: String) -> Bool {
        guard let host = NormalizedURL(url)?.host ?? URL(string: url)?.host else { return false }
        if allowed.contains(host) { return true }
        return allowed.contains(host.lowercased())
    }

    /// Fetches one URL: robots, politeness, the request, link extraction.
    func fetch(_ url: String, depth: Int) -> CrawlRecord {
        let started = Hub.current.nowUpdated()
        var r = CrawlRecord(url: url, depth: depth)
        fill(&r, url)
        r.ms = Int(((Hub.current.nowUpdated() - started) * 1000).rounded())
        return r
    }

    private func fill(_ r: inout CrawlRecord, _ url: String) {
        do {
            guard let parts = NormalizedURL(url) ?? URL(string: url).flatMap(URLNormalizer.normalize)
                    .flatMap({ NormalizedURL($0.absoluteString) }) else {
                r.error = "not an http(s) URL"
                return
            }
            if options.obeyRobots {
                let rules = try robotsFor(parts.origin)
                if !rules.allows(parts.robotsPath) {
                    r.error = "disallowed by robots.txt"
                    return
                }
            }
            try politeness(parts.origin)
            let response = try client.get(url)
            r.status = response.status
            let mediaType = response.mediaType
            r.contentType = mediaType
            r.bytes = response.body.count
            let final = response.urlString ?? url
            if final != url { r.redirectedTo = final }
            if response.status < 400, mediaType == "text/html" {
                let links: [String]
                if let parsers {
                    let body = response.body
                    let (found, cpu) = try parsers.run {
                        let before = threadCPUSeconds()
                        let found = LinkExtractor.linkStrings(in: body, pageURL: final)
                        return (found, threadCPUSeconds() - before)
                    }
                    links = found
                    parseCPUSeconds += cpu
                } else {
                    links = LinkExtractor.linkStrings(in: response.body, pageURL: final)
                }
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
            // Missing when reading it failed (Redis unusable): no page of
            // the host is fetched without its rules.
            guard let rules = robots[hostKey] else {
                throw CrawlError(message: "the robots.txt of \(hostKey) could not be read")
            }
            return rules
        }
        let event = Event()
        robotsFetching[hostKey] = event
        defer { event.set(); robotsFetching[hostKey] = nil }
        // A shared crawl takes the robots.txt another process stored, or
        // fetches it and stores it for the others.
        let text: String
        if let stored = try shared?.storedRobots(origin: hostKey) {
            text = stored
        } else {
            let response = try? client.get(hostKey + "/robots.txt")
            if let response, response.status == 200 || (400..<500).contains(response.status) {
                // An answer (rules, or none: 4xx) is shared with the other
                // processes, the first one stored winning.
                let fetched = response.status == 200 ? response.text : ""
                text = try shared?.storeRobots(origin: hostKey, text: fetched) ?? fetched
            } else {
                // No answer (unreachable, 5xx): no rules here, nothing
                // stored, so another process may do better.
                text = ""
            }
        }
        let rules = text.isEmpty ? Robots.allowAll : Robots(parsing: text, userAgent: options.userAgent)
        robots[hostKey] = rules
        return rules
    }

    /// Keeps the per-host delay (the larger of ours and robots.txt's).
    private func politeness(_ hostKey: String) throws {
        let delay = max(options.delay, robots[hostKey]?.crawlDelay ?? 0)
        guard delay > 0 else { return }
        if let shared {
            // The slot is taken in Redis: one delay between requests of all
            // the crawl's processes.
            let wait = try shared.politenessWait(origin: hostKey, delay: delay)
            if wait > 0 { try Green.sleep(wait) }
            return
        }
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

/// CPU seconds the calling thread has used.
public func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// One fetched URL: a JSON line of the crawl's output.
public struct CrawlRecord: Sendable, Codable {
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
    /// Written by hand, on bytes: JSONEncoder per record costs more than
    /// the page.
    public var jsonLine: String {
        var out: [UInt8] = []
        out.reserveCapacity(96 + url.utf8.count + (contentType?.utf8.count ?? 0) + (error?.utf8.count ?? 0)
                            + (redirectedTo?.utf8.count ?? 0))
        CrawlRecord.key("{\"bytes\":", bytes, &out)
        if let contentType { CrawlRecord.key(",\"content_type\":", contentType, &out) }
        CrawlRecord.key(",\"depth\":", depth, &out)
        if let error { CrawlRecord.key(",\"error\":", error, &out) }
        CrawlRecord.key(",\"links\":", links, &out)
        CrawlRecord.key(",\"ms\":", ms, &out)
        if let redirectedTo { CrawlRecord.key(",\"redirected_to\":", redirectedTo, &out) }
        if let status { CrawlRecord.key(",\"status\":", status, &out) }
        CrawlRecord.key(",\"url\":", url, &out)
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    private static func key(_ key: StaticString, _ value: Int, _ out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            var n = 0
            repeat {
                d[n] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                n += 1
            } while magnitude > 0
            while n > 0 {
                n -= 1
                out.append(d[n])
            }
        }
    }

    private static func key(_ key: StaticString, _ value: String, _ out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        quote(value, into: &out)
    }

    /// A JSON string literal of `s`.
    static func quote(_ s: String) -> String {
        var out: [UInt8] = []
        quote(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `s` as a JSON string literal: quotes, backslashes and
    /// control characters escaped, everything else (UTF-8) as it is.
    static func quote(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(b)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(b)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 15)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

public struct CrawlSummary: Sendable {
    public let pages: Int
    public let errors: Int
    public let seconds: Double
    public var pagesPerSecond: Double { seconds > 0 ? Double(pages) / seconds : 0 }
}

/// The parts of a URL string already in `URLNormalizer`'s form
/// ("http://host[:port]/path[?query]"), read off its bytes.
struct NormalizedURL {
    /// "http://host[:port]": the robots.txt and politeness key.
    let origin: String
    let host: String
    /// The path and query, as robots.txt rules match them.
    let robotsPath: String

    init?(_ text: String) {
        guard FastResolver.looksNormalized(text), let authority = text.afterSchemeSeparator() else { return nil }
        let u = text.utf8
        guard let pathStart = u[authority...].firstIndex(of: UInt8(ascii: "/")) else { return nil }
        origin = String(Substring(u[..<pathStart]))
        let hostAndPort = u[authority..<pathStart]
        if hostAndPort.first == UInt8(ascii: "[") {
            // An IPv6 literal: the host as URL gives it.
            guard let h = URL(string: text)?.host else { return nil }
            host = h
        } else {
            let colon = hostAndPort.lastIndex(of: UInt8(ascii: ":"))
            host = String(Substring(hostAndPort[..<(colon ?? pathStart)]))
        }
        let target = u[pathStart...]
        if target.contains(UInt8(ascii: "%")) {
            // Rules match decoded paths (as URL.path gives them).
            guard let url = URL(string: text) else { return nil }
            robotsPath = (url.path.isEmpty ? "/" : url.path) + (url.query.map { "?" + $0 } ?? "")
        } else {
            robotsPath = String(Substring(target))
        }
    }
}

public struct CrawlError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
