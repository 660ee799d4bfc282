import Foundation
import Green
import GreenCrawl
import GreenHTTP
import XCTest
import GreenTestSupport

/// What crawler users expect beyond fetching: filters, headers, retries,
/// size cuts, sitemaps, archives.
final class CrawlFeatureTests: GreenTestCase {
    /// What a test site saw: each request's path, headers and hub time.
    final class Log {
        var requests: [(path: String, headers: HTTPHeaders, at: Double)] = []
        var hits: [String: Int] = [:]
        func paths() -> [String] { requests.map(\.path) }
    }

    /// Serves `pages` (path -> response, or a closure of the hit count)
    /// on loopback while `body` runs with the site's root URL.
    private func withSite(_ routes: [String: (Int) -> HTTPResponse], _ body: (String, Log) throws -> Void) throws {
        let log = Log()
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { request in
            let path = String(request.path)
            log.requests.append((path, request.headers, Hub.current.nowUpdated()))
            let hit = (log.hits[path] ?? 0) + 1
            log.hits[path] = hit
            return routes[path]?(hit) ?? HTTPResponse(status: 404, text: "no")
        }
        server.start()
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        try body("http://127.0.0.1:\(server.address.port)", log)
    }

    private static func html(_ links: [String], padding: Int = 0) -> (Int) -> HTTPResponse {
        let text = "<html><body>" + links.map { "<a href=\"\($0)\">\($0)</a>" }.joined()
            + String(repeating: "<p>filler</p>", count: padding) + "</body></html>"
        return { _ in HTTPResponse(text: text, contentType: "text/html; charset=utf-8") }
    }

    private func crawl(_ root: String, _ configure: (inout Crawler.Options) -> Void) throws
        -> (summary: CrawlSummary, records: [String: CrawlRecord]) {
        var options = Crawler.Options()
        options.timeout = 5
        options.retryBaseDelay = 0.01
        configure(&options)
        var records: [String: CrawlRecord] = [:]
        let summary = try withTimeout(60) {
            try Crawler(options: options).crawl(URL(string: root + "/")!) { records[URL(string: $0.url)!.path] = $0 }
        }
        return (summary, records)
    }

    func testIncludeAndExcludePatternsChooseTheLinksFollowed() throws {
        let routes: [String: (Int) -> HTTPResponse] = [
            "/": Self.html(["/docs/a.html", "/docs/b.pdf", "/blog/c.html", "/docs/private/d.html"]),
            "/docs/a.html": Self.html([]), "/docs/b.pdf": Self.html([]), "/blog/c.html": Self.html([]),
            "/docs/private/d.html": Self.html([]),
        ]
        try withSite(routes) { root, log in
            let (_, records) = try crawl(root) {
                $0.include = ["/docs/", "/blog/"]
                $0.exclude = ["\\.pdf$", "/private/"]
            }
            XCTAssertEqual(Set(records.keys), ["/", "/docs/a.html", "/blog/c.html"])
            XCTAssertEqual(Set(log.paths()), ["/robots.txt", "/", "/docs/a.html", "/blog/c.html"])
        }
        var options = Crawler.Options()
        options.exclude = ["(unclosed"]
        XCTAssertThrowsError(try Crawler(options: options)) { error in
            XCTAssertTrue("\(error)".contains("--exclude \"(unclosed\""), "\(error)")
        }
    }

    func testTheUserAgentAndHeadersGoWithEveryRequest() throws {
        try withSite(["/": Self.html(["/next"]), "/next": Self.html([])]) { root, log in
            _ = try crawl(root) {
                $0.userAgent = "test-agent/2"
                $0.headers = ["X-Token: abc", "Accept-Language: fr"]
            }
            XCTAssertEqual(log.requests.count, 3)
            for r in log.requests {
                XCTAssertEqual(r.headers["User-Agent"], "test-agent/2", r.path)
                XCTAssertEqual(r.headers["X-Token"], "abc", r.path)
                XCTAssertEqual(r.headers["Accept-Language"], "fr", r.path)
            }
        }
        for bad in ["no colon here", "X-A: 1\r\nX-Injected: yes", "X-A: 1\nX-Injected: yes", "X-A: \u{0}"] {
            var options = Crawler.Options()
            options.headers = [bad]
            XCTAssertThrowsError(try Crawler(options: options), bad.debugDescription)
        }
        var options = Crawler.Options()
        options.userAgent = "agent\r\nX-Injected: yes"
        XCTAssertThrowsError(try Crawler(options: options))
    }

    func testRobotsRulesWithCRLFLineEndingsAreRead() {
        let robots = Robots(parsing: "User-agent: *\r\nDisallow: /private/\r\nSitemap: http://h/s.xml\r\n", userAgent: "x")
        XCTAssertFalse(robots.allows("/private/a"))
        XCTAssertTrue(robots.allows("/public"))
        XCTAssertEqual(robots.sitemaps, ["http://h/s.xml"])
    }

    func testServerErrorsAreRetriedWithBackoffAndCounted() throws {
        let routes: [String: (Int) -> HTTPResponse] = [
            "/": Self.html(["/flaky", "/down", "/missing"]),
            "/flaky": { hit in hit <= 2 ? HTTPResponse(status: 503, text: "busy") : HTTPResponse(text: "ok") },
            "/down": { _ in HTTPResponse(status: 500, text: "broken") },
        ]
        try withSite(routes) { root, log in
            let (summary, records) = try crawl(root) { $0.retries = 2 }
            XCTAssertEqual(records["/flaky"]?.status, 200)
            XCTAssertEqual(records["/flaky"]?.retries, 2)
            XCTAssertEqual(records["/down"]?.status, 500)
            XCTAssertEqual(records["/down"]?.retries, 2)
            XCTAssertEqual(log.hits["/down"], 3)
            // A 404 is an answer, not a failure to retry.
            XCTAssertEqual(log.hits["/missing"], 1)
            XCTAssertEqual(records["/missing"]?.retries, 0)
            XCTAssertEqual(summary.retries, 4)
            XCTAssertTrue(records["/flaky"]!.jsonLine.contains("\"retries\":2"))
            // Each wait at least the base delay, doubled the second time.
            let times = log.requests.filter { $0.path == "/down" }.map(\.at)
            XCTAssertGreaterThanOrEqual(times[1] - times[0], 0.01 * 0.5)
            XCTAssertGreaterThanOrEqual(times[2] - times[1], 0.02 * 0.5)
        }
    }

    func testRetryAfterIsObeyedAndOneTooLongEndsTheRetries() throws {
        let routes: [String: (Int) -> HTTPResponse] = [
            "/": Self.html(["/limited", "/later"]),
            "/limited": { hit in
                hit == 1 ? HTTPResponse(status: 429, headers: ["Retry-After": "1"], body: []) : HTTPResponse(text: "ok")
            },
            "/later": { _ in HTTPResponse(status: 503, headers: ["Retry-After": "3600"], body: []) },
        ]
        try withSite(routes) { root, log in
            let (_, records) = try crawl(root) { $0.retries = 3 }
            XCTAssertEqual(records["/limited"]?.status, 200)
            XCTAssertEqual(records["/limited"]?.retries, 1)
            let times = log.requests.filter { $0.path == "/limited" }.map(\.at)
            XCTAssertEqual(times.count, 2)
            XCTAssertGreaterThanOrEqual(times[1] - times[0], 0.99)
            XCTAssertEqual(records["/later"]?.status, 503)
            XCTAssertEqual(log.hits["/later"], 1)
        }
    }

    func testTheRetryPolicyBacksOffExponentiallyAndReadsHTTPDates() throws {
        let policy = RetryPolicy(retries: 3, baseDelay: 0.5, maxRetryAfter: 60)
        func wait(_ attempt: Int, _ status: Int, _ headers: HTTPHeaders = [:], random: Double = 1) -> Double? {
            if case .retry(let after) = policy.decide(attempt: attempt, status: status, headers: headers, error: nil,
                                                      random: random) { return after }
            return nil
        }
        XCTAssertEqual(wait(0, 503), 0.5)
        XCTAssertEqual(wait(1, 503), 1.0)
        XCTAssertEqual(wait(2, 502, random: 0.5), 1.0)
        XCTAssertNil(wait(3, 503), "out of retries")
        XCTAssertNil(wait(0, 404))
        XCTAssertEqual(wait(0, 429, ["Retry-After": "7"], random: 0.5), 7)
        XCTAssertEqual(wait(0, 429, ["Retry-After": "8"], random: 1), 10)
        XCTAssertEqual(wait(0, 503, ["Retry-After": "1.5"], random: 0.5), 1.5)
        let many = RetryPolicy(retries: 5_000, baseDelay: 0.5, maxRetryAfter: 60)
        if case .retry(let after) = many.decide(attempt: 4_000, status: 503, headers: [:], error: nil, random: 1) {
            XCTAssertEqual(after, 60, "backoff capped")
        } else {
            XCTFail("no retry")
        }
        XCTAssertNil(wait(0, 429, ["Retry-After": "61"]), "longer than maxRetryAfter")
        let now = Date(timeIntervalSince1970: 784_111_777)   // Sun, 06 Nov 1994 08:49:37 GMT
        XCTAssertEqual(RetryPolicy.retryAfterSeconds("Sun, 06 Nov 1994 08:50:07 GMT", now: now), 30)
        XCTAssertNil(RetryPolicy.retryAfterSeconds("soon", now: now))
        XCTAssertEqual(RetryPolicy.retryAfterSeconds("Sun, 06 Nov 1994 08:00:00 GMT", now: now), 0)
    }

    func testAConnectionThatIsRefusedIsRetriedAndAReadTimeoutIsNot() throws {
        let port = try freeLoopbackPort()
        let (_, records) = try crawl("http://127.0.0.1:\(port)") { $0.retries = 2; $0.obeyRobots = false }
        XCTAssertEqual(records["/"]?.retries, 2)
        XCTAssertTrue(records["/"]?.error?.lowercased().contains("refused") ?? false, records["/"]?.error ?? "")

        let routes: [String: (Int) -> HTTPResponse] = [
            "/": { _ in _ = try? Green.sleep(5); return HTTPResponse(text: "late") },
        ]
        try withSite(routes) { root, log in
            let (_, records) = try crawl(root) { $0.timeout = 0.2; $0.obeyRobots = false }
            XCTAssertEqual(records["/"]?.retries, 0)
            XCTAssertTrue(records["/"]?.error?.contains("read timeout") ?? false, records["/"]?.error ?? "")
            XCTAssertEqual(log.hits["/"], 1)
        }
    }

    func testMaxBytesCutsTheTransferAndKeepsTheLinksBeforeTheCut() throws {
        let early = (0..<20).map { "/early/\($0)" }
        let late = (0..<20).map { "/late/\($0)" }
        let page = "<html><body>" + early.map { "<a href=\"\($0)\">x</a>" }.joined()
            + String(repeating: "<p>padding padding padding</p>", count: 10_000)
            + late.map { "<a href=\"\($0)\">x</a>" }.joined() + "</body></html>"
        try withSite(["/": { _ in HTTPResponse(text: page, contentType: "text/html") }]) { root, _ in
            let (summary, records) = try crawl(root) { $0.maxBytes = 50_000; $0.maxDepth = 0 }
            let r = try XCTUnwrap(records["/"])
            XCTAssertTrue(r.truncated)
            XCTAssertEqual(r.bytes, 50_000)
            XCTAssertNil(r.error)
            XCTAssertEqual(r.links, 20)
            XCTAssertEqual(summary.truncated, 1)
            XCTAssertTrue(r.jsonLine.contains("\"truncated\":true"))
            // Without the cut, every link.
            let (_, whole) = try crawl(root) { $0.maxDepth = 0 }
            XCTAssertEqual(whole["/"]?.links, 40)
            XCTAssertFalse(whole["/"]!.jsonLine.contains("truncated"))
        }
    }

    func testAPageOverTheBodyLimitIsAnErrorLineAndBinaryHTMLDoesNoHarm() throws {
        var garbage = SplitMix64(seed: 7)
        let binary = (0..<300_000).map { _ in UInt8(truncatingIfNeeded: garbage.next()) }
        let routes: [String: (Int) -> HTTPResponse] = [
            "/": Self.html(["/huge", "/binary", "/fine"]),
            "/huge": { _ in HTTPResponse(status: 200, headers: ["Content-Type": "text/html"],
                                         body: Array(repeating: UInt8(ascii: "a"), count: 3_000_000)) },
            "/binary": { _ in HTTPResponse(status: 200, headers: ["Content-Type": "text/html"], body: binary) },
            "/fine": Self.html([]),
        ]
        try withSite(routes) { root, _ in
            let (summary, records) = try crawl(root) { $0.maxBodyBytes = 1_000_000 }
            XCTAssertEqual(summary.pages, 4)
            XCTAssertTrue(records["/huge"]?.error?.contains("larger than 1000000 bytes") ?? false,
                          records["/huge"]?.error ?? "")
            XCTAssertNil(records["/binary"]?.error)
            XCTAssertEqual(records["/fine"]?.status, 200)
        }
    }

    func testSitemapsSeedPagesNoLinkLeadsTo() throws {
        let gzip = try Subprocess(["gzip", "-c"])
        let listing = """
            <?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <url><loc>ROOT/hidden/one.html</loc></url><url><loc>ROOT/hidden/two.html</loc></url>
            <url><loc>http://elsewhere.test/not-ours.html</loc></url>
            </urlset>
            """
        var root = ""
        var listingGz: [UInt8] = []
        // A sitemap a robots.txt names on another host is not fetched.
        var elsewhere = ""
        var elsewhereHits = 0
        let other = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { _ in
            elsewhereHits += 1
            return HTTPResponse(text: "<urlset><url><loc>http://localhost/x</loc></url></urlset>")
        }
        other.start()
        defer { _ = try? withTimeout(10) { try other.stop(timeout: 1) } }
        elsewhere = "http://localhost:\(other.address.port)"
        let routes: [String: (Int) -> HTTPResponse] = [
            "/": Self.html([]),
            "/robots.txt": { _ in
                HTTPResponse(text: "User-agent: *\nDisallow: /private/\nSitemap: \(root)/sitemap-index.xml\n"
                             + "Sitemap: \(elsewhere)/elsewhere.xml\n")
            },
            "/sitemap-index.xml": { _ in
                HTTPResponse(text: """
                    <sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
                    <sitemap><loc>\(root)/pages.xml.gz</loc></sitemap></sitemapindex>
                    """, contentType: "application/xml")
            },
            "/pages.xml.gz": { _ in HTTPResponse(status: 200, headers: ["Content-Type": "application/gzip"],
                                                 body: listingGz) },
            "/hidden/one.html": Self.html([]), "/hidden/two.html": Self.html([]),
        ]
        try withSite(routes) { base, log in
            root = base
            let gz = try withTimeout(10) { try gzip.communicate(input: Array(listing.replacingOccurrences(of: "ROOT", with: base).utf8)).stdout }
            listingGz = gz
            let (_, without) = try crawl(base) { _ in }
            XCTAssertEqual(Set(without.keys), ["/"])
            let (_, records) = try crawl(base) { $0.sitemaps = true }
            XCTAssertEqual(Set(records.keys), ["/", "/hidden/one.html", "/hidden/two.html"])
            XCTAssertEqual(records["/hidden/one.html"]?.depth, 1)
            XCTAssertTrue(log.paths().contains("/pages.xml.gz"))
            XCTAssertEqual(elsewhereHits, 0)
        }
    }

    func testAWARCFileOfTheCrawlReadsBackInWarcio() throws {
        try withTemporaryDirectory { dir in try checkWARCOfACrawl(at: dir + "/crawl.warc.gz") }
    }

    private func checkWARCOfACrawl(at path: String) throws {
        let routes: [String: (Int) -> HTTPResponse] = [
            "/": Self.html(["/a", "/moved"]),
            "/a": Self.html([], padding: 5_000),
            "/moved": { _ in HTTPResponse(status: 301, headers: ["Location": "/b"], body: []) },
            "/b": Self.html([]),
        ]
        try withSite(routes) { root, _ in
            let (summary, _) = try crawl(root) { $0.warcPath = path; $0.maxBytes = 20_000 }
            XCTAssertEqual(summary.pages, 3)
        }
        let check = try TestVenv.run(["check", "-v", path], tool: "warcio")
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertFalse(check.stdout.contains("invalid"), check.stdout)
        let script = """
            import sys
            from warcio.archiveiterator import ArchiveIterator
            seen = []
            for r in ArchiveIterator(open(sys.argv[1], "rb")):
                if r.rec_type == "response":
                    body = r.content_stream().read()
                    seen.append("%s %s %s %d %s" % (r.rec_headers.get_header("WARC-Target-URI").split("/", 3)[-1],
                        r.http_headers.get_statuscode(), r.rec_headers.get_header("WARC-Truncated"), len(body),
                        r.rec_headers.get_header("WARC-Payload-Digest")[:5]))
                else:
                    seen.append(r.rec_type)
            print("\\n".join(seen))
            """
        let read = try TestVenv.run(["-c", script, path])
        XCTAssertEqual(read.status, 0, read.stderr)
        let lines = read.stdout.split(separator: "\n").map(String.init)
        // warcinfo, then a request and a response per exchange: robots.txt,
        // the pages, the redirect and its target.
        XCTAssertEqual(lines.first, "warcinfo")
        XCTAssertEqual(lines.filter { $0 == "request" }.count, 5, read.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("robots.txt 404 None ") }, read.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("moved 301 None 0 sha1:") }, read.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("a 200 length ") }, read.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("b 200 None ") }, read.stdout)
    }

    func testTheCrawlersGreenletsSayWhatTheyFetch() throws {
        let serving = Event()
        let gate = Event()
        let routes: [String: (Int) -> HTTPResponse] = [
            "/": Self.html(["/slow"]),
            "/slow": { _ in serving.set(); _ = try? gate.wait(timeout: 10); return HTTPResponse(text: "done") },
        ]
        try withSite(routes) { root, _ in
            var options = Crawler.Options()
            options.concurrency = 2
            let crawling = spawn { try Crawler(options: options).crawl(URL(string: root + "/")!) { _ in } }
            // While the slow page is being served, look.
            XCTAssertTrue(try serving.wait(timeout: 10))
            let dump = try GreenletDump.text()
            gate.set()
            _ = try withTimeout(20) { try crawling.get() }
            XCTAssertTrue(dump.contains("crawl worker 0") || dump.contains("crawl worker 1"), dump)
            XCTAssertTrue(dump.contains(": \(root)/slow"), dump)
            XCTAssertTrue(dump.contains("crawl closer"), dump)
        }
    }

    func testTheSummarySaysWhatBoundedTheRun() {
        var s = CrawlSummary(pages: 100, errors: 1, seconds: 2.0)
        s.hubCPUSeconds = 0.4
        s.straggler = .init(url: "http://h/slow", seconds: 1.5, error: "http://h/slow: read timeout after 1.5 s", alone: 1.2)
        XCTAssertEqual(s.boundLine, "bounded by one page: http://h/slow took 1.50 s (read timeout after 1.5 s), "
                       + "1.20 s of it after every other page was done (60% of the run)")
        s.straggler = .init(url: "http://h/last", seconds: 0.01, error: nil, alone: 0.01)
        s.parseThreads = 1
        s.parseCPUSeconds = 1.8
        XCTAssertTrue(s.boundLine.hasPrefix("bounded by parsing: the parse threads were busy 90%"), s.boundLine)
        s.parseCPUSeconds = 0.2
        s.hubCPUSeconds = 1.9
        XCTAssertTrue(s.boundLine.hasPrefix("bounded by the hub's CPU (busy 95%"), s.boundLine)
        s.hubCPUSeconds = 0.5
        XCTAssertTrue(s.boundLine.hasPrefix("bounded by waiting: the hub was idle 75%"), s.boundLine)
        s.cores = 2
        s.processCPUSeconds = 3.6
        XCTAssertTrue(s.boundLine.hasPrefix("bounded by the machine's CPU: this process kept its 2 cores 90% busy"), s.boundLine)
        s.processCPUSeconds = 0.7
        XCTAssertEqual(s.timeLine, "time: fetching 0.50 s CPU, parsing 0.20 s CPU on 1 parse thread, hub idle 1.50 s of 2.00 s")
    }
}
