import Foundation
import Glibc
import Green
import GreenHTTP

/// A polite web crawler on greenlets: up to `concurrency` pages in flight,
/// same host(s) only, robots.txt obeyed, per-host connection cap and
/// optional delay. Bodies stream from the connection into libxml2's HTML
/// parser (`HTMLLinkParser`), on parse threads when there are any, so
/// parsing starts before a page has arrived and no page is held whole;
/// links are deduplicated after normalization. Failed connections, 429
/// and 5xx are retried with backoff (`RetryPolicy`). Each fetched URL
/// yields one `CrawlRecord`; failures are records with an `error`, and the
/// crawl goes on. Hub thread only: make and use a crawler on one thread.
public final class Crawler {
    public struct Options: Sendable, Codable {
        public var concurrency = 50
        public var maxPages = 1_000
        public var maxDepth = Int.max
        /// Hosts links may lead to; empty means the start URL's host only.
        public var allowedHosts: [String] = []
        /// URLs followed must match one of these (POSIX extended regular
        /// expressions; none: all) and none of `exclude`. The start URL is
        /// always fetched.
        public var include: [String] = []
        public var exclude: [String] = []
        public var perHost = 8
        /// Seconds between requests to one host (robots.txt may ask more).
        public var delay = 0.0
        public var timeout = 10.0
        public var obeyRobots = true
        public var userAgent = "swift-green-crawler/0.1"
        /// Sent with every request, as "Name: value".
        public var headers: [String] = []
        /// A page larger than this (decoded) is an error, unless
        /// `maxBytes` cuts it first.
        public var maxBodyBytes = 8 * 1024 * 1024
        /// Bytes of a page read at most: the transfer is cut there, the
        /// page's links are those before the cut, and its record says
        /// `truncated`.
        public var maxBytes: Int?
        /// Tries after the first for connection failures, 429 and 5xx.
        public var retries = 2
        /// Seconds before the first retry; doubled for each further one,
        /// with jitter. A `Retry-After` answer is obeyed instead.
        public var retryBaseDelay = 0.5
        /// A `Retry-After` longer than this ends the page's retries.
        public var maxRetryAfter = 60.0
        /// Follow links marked `rel=nofollow` and pages whose robots meta
        /// tag says nofollow.
        public var followNofollow = false
        /// Seed the frontier with the pages of the site's sitemaps (the
        /// robots.txt `Sitemap:` lines and /sitemap.xml).
        public var sitemaps = false
        /// Write every request and response to this WARC/1.1 file
        /// (`.warc.gz`, a gzip member per record), as wget --warc-file.
        public var warcPath: String?
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
    private let filter: URLFilter
    private let retryPolicy: RetryPolicy
    private let requestHeaders: HTTPHeaders
    /// Open while a crawl with `warcPath` runs.
    private var warc: WARCWriter?

    /// Parse pools, one per size asked for, shared by every crawler of the
    /// process: a pool's threads live as long as the program, so crawlers
    /// that come and go must not each start their own. Pages queue in the
    /// pool, so its threads parse back to back while the hub fetches.
    private static func parsePool(size: Int) -> ThreadPool {
        parsePools.withLock { pools in
            if let pool = pools[size] { return pool }
            let pool = ThreadPool(size: size)
            pools[size] = pool
            return pool
        }
    }
    private static let parsePools = Locked([Int: ThreadPool]())
    private var seen = Set<String>()
    private var robots: [String: Robots] = [:]
    private var robotsFetching: [String: Event] = [:]
    private var lastFetch: [String: Double] = [:]
    private var hostLocks: [String: Lock] = [:]
    package var allowed: Set<String> = []
    /// The Redis frontier of a shared crawl, while one runs.
    var shared: RedisFrontier?
    /// A shared crawl's cap on requests in flight per host, over all its
    /// processes (0: none).
    var crawlPerHost = 0
    /// `stop()` was called; `wakeFeeder` is set to tell the shared crawl's
    /// feeder.
    var stopRequested = false
    var wakeFeeder: Event?

    /// Counters, live during the crawl.
    public internal(set) var done = 0
    public internal(set) var errors = 0
    public internal(set) var inFlight = 0
    public internal(set) var queued = 0
    /// Attempts made again (connection failures, 429, 5xx).
    public internal(set) var retried = 0
    /// Pages cut at `maxBytes`.
    public internal(set) var truncated = 0
    /// CPU seconds spent parsing this crawl's pages, on parse threads or
    /// on the hub.
    public internal(set) var parseCPUSeconds = 0.0
    /// The last two pages to finish, and when (hub time), for the
    /// summary's straggler.
    private var lastFinished: (url: String, seconds: Double, at: Double, error: String?)?
    private var previousFinishAt = 0.0

    /// Throws `CrawlError` when an `include`/`exclude` pattern does not
    /// compile or a header is not "Name: value".
    public init(options: Options = Options()) throws {
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
        filter = try URLFilter(include: options.include, exclude: options.exclude)
        retryPolicy = RetryPolicy(retries: max(0, options.retries), baseDelay: options.retryBaseDelay,
                                  maxRetryAfter: options.maxRetryAfter)
        var headers = HTTPHeaders()
        // Refused here, when the crawl is set up, by the rules the client
        // applies to every request.
        for line in options.headers {
            guard let colon = line.firstIndex(of: ":"), HTTPHeaders.isSendableName(line[..<colon]),
                  HTTPHeaders.isSendableValue(line[line.index(after: colon)...]) else {
                throw CrawlError(message: "--header \(line.debugDescription): give it as 'Name: value', on one line")
            }
            headers.add(String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingASCIISpace())
        }
        guard HTTPHeaders.isSendableValue(options.userAgent) else {
            throw CrawlError(message: "--user-agent \(options.userAgent.debugDescription): no control characters")
        }
        guard (options.maxBytes ?? 1) >= 1, options.timeout > 0, options.timeout < 1e6 else {
            throw CrawlError(message: "maxBytes must be at least 1 and timeout between 0 and 1,000,000 s")
        }
        requestHeaders = headers
    }

    /// Opens the WARC file, if the options name one.
    func openArchive() throws {
        guard let path = options.warcPath, warc == nil else { return }
        do {
            warc = try WARCWriter(path: path, extraInfo: [("robots", options.obeyRobots ? "obey" : "ignore"),
                                                          ("http-header-user-agent", options.userAgent)])
        } catch {
            throw CrawlError(message: "\(error)")
        }
    }

    func closeArchive() throws {
        defer { warc = nil }
        do { try warc?.close() } catch { throw CrawlError(message: "\(error)") }
    }

    /// Crawls from `start`, calling `record` for every fetched URL in the
    /// order they finish. Returns the summary.
    public func crawl(_ start: URL, record: (CrawlRecord) throws -> Void) throws -> CrawlSummary {
        guard let first = URLNormalizer.normalize(start) else {
            throw CrawlError(message: "not an http(s) URL: \(start)")
        }
        allowed = Set((options.allowedHosts.isEmpty ? [first.host ?? ""] : options.allowedHosts).map { $0.lowercased() })
        resetCounters()
        try openArchive()
        // The frontier holds URL strings, normalized (by URLNormalizer or
        // the link extractor): their parts are read off the bytes, and no
        // Foundation URL is built for a page on the common path.
        let frontier = JoinableQueue<(String, Int)>()
        seen.insert(first.absoluteString)
        try frontier.put((first.absoluteString, 0))
        queued = 1
        let results = Queue<CrawlRecord>()
        let began = Hub.current.nowUpdated()
        let cpuBefore = threadCPUSeconds()
        let processBefore = processCPUSeconds()
        let workers = Pool(size: options.concurrency)
        // The sitemaps' pages join the frontier from a greenlet of their
        // own (not a worker's slot); the closer waits for it before it waits
        // for the frontier to empty.
        var seeder: Greenlet<Void>?
        if options.sitemaps, options.maxDepth >= 1, let origin = NormalizedURL(first.absoluteString)?.origin {
            seeder = spawn(name: "crawl sitemaps of \(origin)") { [self] in
                for url in try sitemapPages(origin: origin) where seen.count < options.maxPages {
                    guard !seen.contains(url), isAllowed(url) else { continue }
                    seen.insert(url)
                    try frontier.put((url, 1))
                    queued += 1
                }
            }
        }
        for n in 0..<options.concurrency {
            let name = "crawl worker \(n)"
            try workers.spawn(name: name) { [self] in
                // Named after the page it fetches, for greenlet dumps.
                let me = Greenlet<Void>.current
                for (url, depth) in frontier {
                    defer { try? frontier.taskDone() }
                    queued -= 1
                    inFlight += 1
                    me.name = name + ": " + url
                    let r = fetch(url, depth: depth)
                    me.name = name
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
        let closer = spawn(name: "crawl closer") { () throws -> Void in
            defer { results.close() }
            // A sitemap that fails leaves the crawl to its links.
            if let seeder { _ = try? seeder.join() }
            try frontier.join()
            frontier.close()
            try workers.join()
        }
        defer {
            if !closer.isReady { try? closer.kill() }
            if let seeder, !seeder.isReady { try? seeder.kill() }
            try? workers.kill()
            try? closeArchive()
        }
        for r in results { try record(r) }
        try closer.get()
        try closeArchive()
        return summary(since: began, cpuBefore: cpuBefore, processBefore: processBefore, pages: done, errors: errors)
    }

    /// Counters start from zero with each crawl.
    func resetCounters() {
        seen.removeAll()
        done = 0
        errors = 0
        inFlight = 0
        queued = 0
        retried = 0
        truncated = 0
        parseCPUSeconds = 0
        lastFinished = nil
        previousFinishAt = 0
    }

    /// The summary of a crawl that began at `began` (hub time) with the
    /// hub thread's CPU at `cpuBefore` and the process's at `processBefore`.
    func summary(since began: Double, cpuBefore: Double, processBefore: Double, pages: Int, errors: Int) -> CrawlSummary {
        let end = Hub.current.nowUpdated()
        var s = CrawlSummary(pages: pages, errors: errors, seconds: end - began)
        s.retries = retried
        s.truncated = truncated
        s.hubCPUSeconds = threadCPUSeconds() - cpuBefore
        s.parseCPUSeconds = parseCPUSeconds
        s.parseThreads = options.parseThreads
        s.processCPUSeconds = processCPUSeconds() - processBefore
        s.cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if let last = lastFinished {
            s.straggler = CrawlSummary.Straggler(url: last.url, seconds: last.seconds, error: last.error,
                                                 alone: last.at - max(previousFinishAt, began))
        }
        return s
    }

    /// Page URLs from the site's sitemaps; a sitemap that fails is
    /// skipped (the crawl goes on from the start page). Sitemaps are
    /// fetched only from the crawl's hosts (a robots.txt may name any URL),
    /// politely, and no more pages are read than the crawl may fetch.
    private func sitemapPages(origin: String) throws -> [String] {
        let declared = options.obeyRobots ? try robotsFor(origin).sitemaps : nil
        var limits = SitemapDiscovery.Limits()
        limits.maxPages = options.maxPages
        let found = try SitemapDiscovery.discover(origin: origin, robotsSitemaps: declared, limits: limits) { [self] url in
            guard let parts = NormalizedURL(url) ?? URLNormalizer.normalize(url).flatMap({ NormalizedURL($0.absoluteString) }),
                  allowed.contains(parts.host.lowercased()) else {
                throw CrawlError(message: "not on the crawl's hosts: not fetched")
            }
            try politeness(parts.origin)
            let r = try get(url)
            return (r.status, r.body)
        }
        return found.pages.compactMap { URLNormalizer.normalize($0)?.absoluteString }
    }

    /// A whole response (robots.txt, a sitemap) with the crawl's headers,
    /// archived like the pages; a body over `maxBodyBytes` is an error.
    private func get(_ url: String) throws -> HTTPClientResponse {
        var body: [UInt8] = []
        var tooLarge = false
        var response = try client.stream(url: url, headers: requestHeaders, exchange: archiver(since: Date()),
                                         head: { _ in true }) { [self] piece in
            guard body.count + piece.count <= options.maxBodyBytes else {
                tooLarge = true
                return false
            }
            body.append(contentsOf: piece)
            return true
        }
        if tooLarge { throw CrawlError(message: "\(url): the body is larger than \(options.maxBodyBytes) bytes") }
        response.body = body
        return response
    }

    /// What writes a fetch's exchanges to the WARC file, if one is open.
    private func archiver(since started: Date) -> ((HTTPExchange) throws -> Void)? {
        guard let archive = warc else { return nil }
        return { exchange in
            try archive.writeExchange(targetURI: exchange.url, date: started, ipAddress: exchange.remoteAddress,
                                      request: exchange.request, response: exchange.response,
                                      truncated: exchange.complete ? nil : .length)
        }
    }

    /// Whether links to `url` are followed: an allowed host, and the
    /// include/exclude patterns.
    package func isAllowed(_ url: String) -> Bool {
        guard let host = NormalizedURL(url)?.host ?? URL(string: url)?.host else { return false }
        guard allowed.contains(host) || allowed.contains(host.lowercased()) else { return false }
        return filter.isEmpty || filter.allows(url)
    }

    /// Fetches one URL: robots, politeness, the request with its retries,
    /// link extraction.
    package func fetch(_ url: String, depth: Int) -> CrawlRecord {
        let started = Hub.current.nowUpdated()
        var r = CrawlRecord(url: url, depth: depth)
        fill(&r, url)
        let now = Hub.current.nowUpdated()
        r.ms = Int(((now - started) * 1000).rounded())
        previousFinishAt = lastFinished?.at ?? previousFinishAt
        lastFinished = (url, now - started, now, r.error ?? r.status.flatMap { $0 >= 400 ? "status \($0)" : nil })
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
            var attempt = 0
            while true {
                try politeness(parts.origin)
                var page = CrawlRecord(url: r.url, depth: r.depth)
                var failure: Error?
                var answer: HTTPClientResponse?
                do {
                    // A shared crawl counts this host's connections over
                    // every process.
                    let slot = try crawlPerHost > 0 ? shared.map {
                        ($0, try $0.acquireConnection(origin: parts.origin, cap: crawlPerHost, hold: options.timeout * 3 + 5))
                    } : nil
                    defer { if let (frontier, token) = slot { try? frontier.releaseConnection(origin: parts.origin, token: token) } }
                    answer = try fetchOnce(url, into: &page, mayRetry: attempt < retryPolicy.retries)
                } catch {
                    failure = error
                }
                let decision = retryPolicy.decide(attempt: attempt, status: answer?.status, headers: answer?.headers,
                                                  error: failure)
                if case .retry(let after) = decision {
                    attempt += 1
                    retried += 1
                    try Green.sleep(after)
                    continue
                }
                page.retries = attempt
                r = page
                if let failure { r.error = "\(failure)" }
                return
            }
        } catch {
            r.error = "\(error)"
        }
    }

    /// One attempt: the response streams into the link parser. A 429 or
    /// 5xx answer that will be retried is not read (`mayRetry`).
    private func fetchOnce(_ url: String, into r: inout CrawlRecord, mayRetry: Bool) throws -> HTTPClientResponse {
        let started = Date()
        var parse: PageParse?
        var bytes = 0
        var cut = false
        var tooLarge = false
        let maxBytes = options.maxBytes
        let response = try client.stream(url: url, headers: requestHeaders, exchange: archiver(since: started),
                                         head: { [self] head in
            if mayRetry && (head.status == 429 || head.status >= 500) { return false }
            if maxBytes == nil, let length = head.headers["Content-Length"].flatMap({ Int($0) }),
               length > options.maxBodyBytes {
                tooLarge = true
                return false
            }
            if head.status < 400, head.mediaType == "text/html" {
                let charset = head.headers["Content-Type"].flatMap(CharsetPrescan.charsetParameter)
                parse = PageParse(HTMLLinkParser(pageURL: head.urlString ?? url, charset: charset,
                                                 followNofollow: options.followNofollow), parsers: parsers)
            }
            return true
        }) { [self] piece in
            var piece = piece
            if let maxBytes, bytes + piece.count > maxBytes {
                piece = UnsafeRawBufferPointer(rebasing: piece[..<(maxBytes - bytes)])
                cut = true
            } else if bytes + piece.count > options.maxBodyBytes {
                tooLarge = true
                return false
            }
            bytes += piece.count
            try parse?.feed(piece)
            return !cut
        }
        r.status = response.status
        r.contentType = response.mediaType
        r.bytes = bytes
        let final = response.urlString ?? url
        if final != url { r.redirectedTo = final }
        if cut {
            r.truncated = true
            truncated += 1
        }
        if let parse {
            do {
                r.found = try parse.finish(truncated: cut || tooLarge)
            } catch let e as LinkExtractionError {
                r.found = e.links
                r.error = "\(e)"
            }
            r.links = r.found.count
            parseCPUSeconds += parse.cpuSeconds
        }
        if tooLarge {
            r.error = "\(url): the body is larger than \(options.maxBodyBytes) bytes (--max-bytes cuts it instead)"
        }
        return response
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
            let response = try? get(hostKey + "/robots.txt")
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

/// CPU seconds this process (every thread) has used.
func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}
