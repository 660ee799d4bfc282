import Glibc
import Foundation
import Green
import GreenCompare
import GreenCrawl
import GreenCrawlModels
import XCTest
import GreenTestSupport

final class CrawlTests: GreenTestCase {
    func testLinksAreFoundByTheHTMLParserResolvedAndDeduplicated() throws {
        let html = """
            <html><head><title>t</title></head><body>
            <a href="/a">a</a> <a href="b#frag">b</a> <A HREF="HTTP://Example.COM:80/c">c</A>
            <a href="/a#again">dup</a> <a href="mailto:x@y.z">mail</a> <a>no href</a>
            <!-- <a href="/commented">no</a> --> <script>var s = '<a href="/in-script">';</script>
            <p><a href=" /spaced ">spaced</a></p><a href="d?q=1&amp;r=2">query</a>
            </body></html>
            """
        let links = LinkExtractor.links(in: Array(html.utf8), pageURL: URL(string: "http://example.com/dir/page")!)
        XCTAssertEqual(links.map(\.absoluteString), [
            "http://example.com/a", "http://example.com/dir/b", "http://example.com/c",
            "http://example.com/spaced", "http://example.com/dir/d?q=1&r=2",
        ])
    }

    func testLongLinkListsAreDeduplicatedInDocumentOrder() throws {
        // Past 16 links the extractor switches from comparison to a set.
        let hrefs = (0..<40).map { "/p\($0 % 25).html" } + ["p3.html", "./p24.html", "/p30.html"]
        let html = hrefs.map { "<a href=\"\($0)\">x</a>" }.joined()
        let got = LinkExtractor.linkStrings(in: Array(html.utf8), pageURL: "http://h/")
        XCTAssertEqual(got, (0..<25).map { "http://h/p\($0).html" } + ["http://h/p30.html"])
    }

    func testBaseHrefChangesWhatRelativeLinksResolveAgainst() throws {
        let html = "<html><head><base href=\"http://example.com/other/\"></head><body><a href=\"x\">x</a></body></html>"
        let links = LinkExtractor.links(in: Array(html.utf8), pageURL: URL(string: "http://example.com/dir/page")!)
        XCTAssertEqual(links.map(\.absoluteString), ["http://example.com/other/x"])
    }

    func testMalformedHTMLStillYieldsItsLinks() throws {
        // libxml2 also reads the tag the end of the document cuts off.
        let html = "<div><a href=/one>one<p><a href=/two>two</div></span><a href=\"/three"
        let links = LinkExtractor.links(in: Array(html.utf8), pageURL: URL(string: "http://h/")!)
        XCTAssertEqual(links.map(\.path), ["/one", "/two", "/three"])
    }

    func testNormalizationDropsFragmentsDefaultPortsAndCase() throws {
        XCTAssertEqual(URLNormalizer.normalize("HTTP://Host.Example:80/a#b")?.absoluteString, "http://host.example/a")
        XCTAssertEqual(URLNormalizer.normalize("https://h:443")?.absoluteString, "https://h/")
        XCTAssertEqual(URLNormalizer.normalize("http://h:8080/x?")?.absoluteString, "http://h:8080/x")
        XCTAssertNil(URLNormalizer.normalize("ftp://h/x"))
    }

    func testRobotsRulesLongestMatchWinsAndAgentsAreChosen() throws {
        let text = """
            User-agent: *
            Disallow: /private/
            Allow: /private/open
            Disallow: /*.pdf$
            Crawl-delay: 2

            User-agent: swift-green-crawler
            Disallow: /only-for-others/
            """
        let general = Robots(parsing: text, userAgent: "somebot")
        XCTAssertFalse(general.allows("/private/x"))
        XCTAssertTrue(general.allows("/private/open/1"))
        XCTAssertFalse(general.allows("/doc/a.pdf"))
        XCTAssertTrue(general.allows("/doc/a.pdf?x"))
        XCTAssertTrue(general.allows("/public"))
        XCTAssertEqual(general.crawlDelay, 2)
        let ours = Robots(parsing: text, userAgent: "swift-green-crawler/0.1")
        XCTAssertTrue(ours.allows("/private/x"))
        XCTAssertFalse(ours.allows("/only-for-others/a"))
    }

    func testTheDemoSiteIsCrawledCompletelyWithItsPlantedErrorsAsRecords() throws {
        // The slow page outlasts the timeout by far, and the timeout every
        // other page by far too (under a sanitizer on a loaded machine).
        let site = DemoSite(pages: 300, slowSeconds: 6)
        let root = try site.start()
        defer { site.stop() }
        // Parsing on the hub, and on a parse thread: the same crawl.
        for threads in [0, 1] {
            var options = Crawler.Options()
            options.concurrency = 50
            options.timeout = 2
            options.parseThreads = threads
            let crawler = try Crawler(options: options)
            var records: [CrawlRecord] = []
            let summary = try withTimeout(60) { try crawler.crawl(root) { records.append($0) } }
            XCTAssertEqual(summary.pages, site.expected.urls, "parse threads \(threads)")
            XCTAssertEqual(summary.errors, site.expected.errors, "parse threads \(threads)")
            XCTAssertGreaterThan(crawler.parseCPUSeconds, 0, "parse threads \(threads)")
            XCTAssertEqual(Set(records.map(\.url)).count, records.count, "a URL was fetched twice")
            let byPath = Dictionary(records.map { (URL(string: $0.url)!.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(byPath["/private/secret"]?.error, "disallowed by robots.txt")
            XCTAssertEqual(byPath["/missing/0"]?.status, 404)
            XCTAssertTrue(byPath["/slow"]?.error?.contains("timeout") ?? false)
            XCTAssertTrue(byPath["/redirect/3"]?.redirectedTo?.hasSuffix("/page/1") ?? false)
            XCTAssertNil(records.first { $0.url.contains("other.invalid") })
            // The JSON line schema.
            let line = try JSONSerialization.jsonObject(with: Data(byPath["/page/1"]!.jsonLine.utf8)) as! [String: Any]
            XCTAssertEqual(Set(line.keys), ["url", "status", "content_type", "bytes", "depth", "links", "ms"])
            XCTAssertEqual(line["content_type"] as? String, "text/html")
            let failed = try JSONSerialization.jsonObject(with: Data(byPath["/slow"]!.jsonLine.utf8)) as! [String: Any]
            XCTAssertNotNil(failed["error"])
        }
    }

    func testThreadsAndProcessesBackendsCrawlTheSameSite() throws {
        let site = DemoSite(pages: 120, slowSeconds: 1.5)
        let root = try site.start(ownThread: true)
        defer { site.stop() }
        var options = Crawler.Options()
        options.concurrency = 8
        options.timeout = 0.5
        let crawlExecutable = try XCTUnwrap(builtExecutable(named: "crawl"), "crawl not built next to the tests")
        for kind in [ModelKind.threads, .processes] {
            var records: [CrawlRecord] = []
            let summary = try ModelCrawler.crawl(root, options: options, model: Model(kind, workerExecutable: crawlExecutable)) {
                records.append($0)
            }
            XCTAssertEqual(summary.pages, site.expected.urls, "\(kind)")
            XCTAssertEqual(summary.errors, site.expected.errors, "\(kind)")
            XCTAssertEqual(Set(records.map(\.url)).count, records.count, "\(kind): a URL was fetched twice")
            let secret = records.first { $0.url.hasSuffix("/private/secret") }
            XCTAssertEqual(secret?.error, "disallowed by robots.txt", "\(kind)")
        }
    }

    func testMaxPagesAndMaxDepthBoundTheCrawl() throws {
        let site = DemoSite(pages: 200, slowSeconds: 0.1)
        let root = try site.start()
        defer { site.stop() }
        var options = Crawler.Options()
        options.maxPages = 25
        let limited = try withTimeout(60) { try Crawler(options: options).crawl(root) { _ in } }
        XCTAssertEqual(limited.pages, 25)
        options = Crawler.Options()
        options.maxDepth = 0
        var depths: [Int] = []
        _ = try withTimeout(60) { try Crawler(options: options).crawl(root) { depths.append($0.depth) } }
        XCTAssertEqual(depths, [0])
    }
}

extension CrawlTests {
    func testJSONLinesEscapeWhatTheyCarry() throws {
        var r = CrawlRecord(url: "http://h/a?q=\"x\"", depth: 2)
        r.error = "bad \"quote\"\nnew line\\ and \u{1} control, ü"
        r.status = 500
        let object = try JSONSerialization.jsonObject(with: Data(r.jsonLine.utf8)) as! [String: Any]
        XCTAssertEqual(object["url"] as? String, "http://h/a?q=\"x\"")
        XCTAssertEqual(object["error"] as? String, "bad \"quote\"\nnew line\\ and \u{1} control, ü")
        XCTAssertEqual(object["status"] as? Int, 500)
        XCTAssertFalse(r.jsonLine.contains("\n"))
    }
}

extension CrawlTests {
    /// A server that misbehaves on purpose, per path, over raw sockets.
    private func badServer() throws -> StreamServer {
        try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { conn, _ in
            var request: [UInt8] = []
            while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
                let chunk = try conn.recv(timeout: 5)
                if chunk.isEmpty { return }
                request += chunk
            }
            let line = String(decoding: request, as: UTF8.self).split(separator: "\r\n").first ?? ""
            let path = line.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
            func send(_ s: String) throws { try conn.sendAll(s) }
            switch path {
            case "/":
                let body = "<a href=/reset>r</a><a href=/garbage>g</a><a href=/huge>h</a><a href=/ok>o</a><a href=/truncated>t</a>"
                try send("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            case "/ok":
                try send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
            case "/garbage":
                try send("THIS IS NOT HTTP\r\n\r\n")
                conn.close()
            case "/huge":
                try send("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000000\r\n\r\n")
                try send(String(repeating: "x", count: 10_000))
            case "/truncated":
                try send("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\nshort")
                conn.close()
            case "/robots.txt":
                try send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            default:   // /reset
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(conn.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                conn.close()
            }
        }
    }

    func testResetsGarbageHugeAndTruncatedResponsesBecomeErrorLinesAndTheCrawlGoesOn() throws {
        let server = try badServer()
        server.start()
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        var options = Crawler.Options()
        options.timeout = 2
        options.maxBodyBytes = 1_000_000
        var records: [String: CrawlRecord] = [:]
        let summary = try withTimeout(30) {
            try Crawler(options: options).crawl(URL(string: "http://127.0.0.1:\(server.address.port)/")!) {
                records[URL(string: $0.url)!.path] = $0
            }
        }
        XCTAssertEqual(summary.pages, 6)
        XCTAssertEqual(records["/ok"]?.status, 200)
        XCTAssertNil(records["/ok"]?.error)
        for path in ["/reset", "/garbage", "/huge", "/truncated"] {
            XCTAssertNotNil(records[path]?.error, "\(path): \(String(describing: records[path]))")
            XCTAssertTrue(records[path]?.error?.contains(path) ?? false, "\(path): \(records[path]?.error ?? "")")
        }
        XCTAssertTrue(records["/huge"]?.error?.contains("larger than") ?? false, records["/huge"]?.error ?? "")
        XCTAssertTrue(records["/garbage"]?.error?.contains("malformed") ?? false, records["/garbage"]?.error ?? "")
    }
}

extension CrawlTests {
    func testTheQuickPathForSimpleLinksAgreesWithFoundationResolution() throws {
        let hrefs = ["/a/b.html", "b.html", "dir/c.html", "/x?y=1&z=2", "p.html#frag", "/q?", "../up.html",
                     "./same.html", "/a/./b", "//other.host/x", "?only=query", "%41.html", "a b.html",
                     "/päge", "mailto:a@b", "HTTP://H/X", "/-_~.html", "/a/b.c/d.html",
                     "../../../../above-root.html", ".", "..", "./", "../", "x/y/../z?k=v", "/a/b/..", "/a/b/.",
                     "/a//b/../c", "sub/./../q.html", ".hidden/.x", "/..a/b..", "../x?y=../z", "  ../spaced.html ",
                     // Found by the fuzzer (make fuzz): a "?" inside a query, brackets in a path.
                     "6?.?", "a]b", "x?y?", "/p?q?",
                     // Fragment-only links and absolute URLs in normal form take the quick path.
                     "#section", " #spaced", "#", "http://other.test/a/b.html", "https://other.test/x?y=1#z",
                     "http://other.test", "http://other.test:80/", "https://Upper.test/", "http://other.test/a?"]
        let page = URL(string: "http://Example.com:8080/dir/sub/page.html")!
        let html = hrefs.map { "<a href=\"\($0)\">x</a>" }.joined()
        let got = LinkExtractor.linkStrings(in: Array(html.utf8), pageURL: page)
        var expected: [String] = []
        for h in hrefs.map({ $0.trimmingCharacters(in: .whitespaces) }) {   // HTML strips spaces around URLs
            guard let resolved = URL(string: h, relativeTo: page)?.absoluteURL
                    ?? URL(string: h.addingPercentEncoding(withAllowedCharacters: .urlFragmentAllowed) ?? "",
                           relativeTo: page)?.absoluteURL,
                  let n = URLNormalizer.normalize(resolved)?.absoluteString,
                  !expected.contains(n) else { continue }
            expected.append(n)
        }
        XCTAssertEqual(got, expected)
    }
}
