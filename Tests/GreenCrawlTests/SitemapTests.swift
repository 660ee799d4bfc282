import Foundation
import Glibc
import Green
@testable import GreenCrawl
import GreenHTTP
import XCTest
import GreenTestSupport

/// Sitemap files (sitemaps.org 0.9) through libxml2, robots.txt's
/// Sitemap lines, and discovery over HTTP.
final class SitemapTests: GreenTestCase {
    private static let ns = "http://www.sitemaps.org/schemas/sitemap/0.9"

    private func urlset(_ locs: [String], namespaced: Bool = true) -> [UInt8] {
        let open = namespaced ? "<urlset xmlns=\"\(SitemapTests.ns)\">" : "<urlset>"
        return Array(("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + open
            + locs.map { "<url><loc>\($0)</loc></url>" }.joined(separator: "\n") + "</urlset>").utf8)
    }

    private func index(_ locs: [String]) -> [UInt8] {
        Array(("<?xml version=\"1.0\"?><sitemapindex xmlns=\"\(SitemapTests.ns)\">"
            + locs.map { "<sitemap><loc>\($0)</loc><lastmod>2026-01-01</lastmod></sitemap>" }.joined()
            + "</sitemapindex>").utf8)
    }

    // MARK: - Parsing

    func testAURLSetGivesItsLocationsInOrderTrimmedAndUnescaped() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
                    xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
              <url>
                <loc>
                  http://example.com/a?x=1&amp;y=2
                </loc>
                <lastmod>2026-01-01</lastmod>
                <image:image><image:loc>http://example.com/picture.png</image:loc></image:image>
              </url>
              <url><loc>http://example.com/b?q=&#38;&#x26;</loc></url>
              <url><loc><![CDATA[http://example.com/c?a=1&b=2]]></loc></url>
              <url><loc>   </loc></url>
              <url><loc/></url>
              <url><loc>http://example.com/d</loc></url>
            </urlset>
            """
        let sitemap = try Sitemap(parsing: Array(xml.utf8), url: "http://example.com/sitemap.xml")
        XCTAssertEqual(sitemap, Sitemap(kind: .urlSet, locations: [
            "http://example.com/a?x=1&y=2", "http://example.com/b?q=&&", "http://example.com/c?a=1&b=2",
            "http://example.com/d",
        ]))
    }

    func testAURLSetWithoutTheNamespaceIsReadToo() throws {
        let sitemap = try Sitemap(parsing: urlset(["http://h/1", "http://h/2"], namespaced: false), url: "http://h/s.xml")
        XCTAssertEqual(sitemap, Sitemap(kind: .urlSet, locations: ["http://h/1", "http://h/2"]))
    }

    func testASitemapIndexGivesItsSitemaps() throws {
        let sitemap = try Sitemap(parsing: index(["http://h/one.xml", "http://h/two.xml.gz"]), url: "http://h/index.xml")
        XCTAssertEqual(sitemap, Sitemap(kind: .index, locations: ["http://h/one.xml", "http://h/two.xml.gz"]))
    }

    func testEntriesInAnotherNamespaceAreNotRead() throws {
        let xml = """
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:x="http://example.com/x">
              <x:url><loc>http://h/not-an-entry</loc></x:url>
              <url><x:loc>http://h/not-a-loc</x:loc></url>
              <url><loc>http://h/yes</loc></url>
            </urlset>
            """
        XCTAssertEqual(try Sitemap(parsing: Array(xml.utf8), url: "http://h/s.xml").locations, ["http://h/yes"])
    }

    func testARootOtherThanURLSetOrSitemapIndexIsAnError() {
        for xml in ["<html><body/></html>", "<urlset xmlns=\"http://example.com/other\"><url><loc>http://h/</loc></url></urlset>"] {
            XCTAssertThrowsError(try Sitemap(parsing: Array(xml.utf8), url: "http://h/s.xml")) { error in
                XCTAssertEqual((error as? SitemapError)?.url, "http://h/s.xml")
                XCTAssertTrue("\(error)".contains("not a sitemap"), "\(error)")
            }
        }
    }

    func testMalformedXMLIsAnErrorNamingTheSitemapAndLibxml2sMessage() {
        let xml = "<urlset><url><loc>http://h/a</loc></url>\n<url><loc>http://h/b</url></urlset>"
        XCTAssertThrowsError(try Sitemap(parsing: Array(xml.utf8), url: "http://h/broken.xml")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("http://h/broken.xml"), text)
            XCTAssertTrue(text.contains("Opening and ending tag mismatch") && text.contains("line 2"), text)
        }
        for garbage in ["", "not xml at all", "<urlset>", "\u{1F}\u{8B}not gzip"] {
            XCTAssertThrowsError(try Sitemap(parsing: Array(garbage.utf8), url: "http://h/g.xml"), garbage) { error in
                XCTAssertTrue("\(error)".contains("http://h/g.xml"), "\(error)")
            }
        }
    }

    func testMalformedXMLPrintsNothingOnStderr() throws {
        let printed = try capturingStderr {
            for xml in ["<urlset><url></urlset>", "<a>&undefined;</a>", "<?xml version='9'?><urlset/>", "\u{0}"] {
                _ = try? Sitemap(parsing: Array(xml.utf8), url: "http://h/s.xml")
            }
        }
        XCTAssertEqual(printed, "")
    }

    func testMoreThan50000EntriesIsAnError() throws {
        let locs = (0..<50_000).map { "http://h/\($0)" }
        XCTAssertEqual(try Sitemap(parsing: urlset(locs), url: "http://h/full.xml").locations.count, 50_000)
        XCTAssertThrowsError(try Sitemap(parsing: urlset(locs + ["http://h/one-more"]), url: "http://h/over.xml")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("http://h/over.xml") && text.contains("50000"), text)
        }
    }

    func testAGzipSitemapIsRecognizedByItsBytesNotItsName() throws {
        let gz = try gzipped(urlset(["http://h/zipped"]))
        XCTAssertEqual(try Sitemap(parsing: gz, url: "http://h/plain-name.xml").locations, ["http://h/zipped"])
    }

    func testMoreThan50MBOfXMLIsAnErrorCompressedOrNot() throws {
        let small = urlset(["http://h/a"])
        let tail = "</urlset>".utf8.count
        let big = Array(small.dropLast(tail)) + [UInt8](repeating: UInt8(ascii: " "), count: Sitemap.maxBytes) + small.suffix(tail)
        XCTAssertThrowsError(try Sitemap(parsing: big, url: "http://h/big.xml")) { error in
            XCTAssertTrue("\(error)".contains("52428800"), "\(error)")
        }
        // Decompression stops at the limit: a small file cannot claim more.
        let bomb = try gzipped(big)
        XCTAssertLessThan(bomb.count, 1_000_000)
        XCTAssertThrowsError(try Sitemap(parsing: bomb, url: "http://h/bomb.xml.gz")) { error in
            XCTAssertTrue("\(error)".contains("http://h/bomb.xml.gz") && "\(error)".contains("larger than"), "\(error)")
        }
    }

    func testExternalEntitiesAndDTDsAreNeverRead() throws {
        try withTemporaryDirectory { dir in
            let secret = "SECRET-\(UInt64.random(in: 0..<UInt64.max))"
            let file = dir + "/secret.txt"
            try secret.write(toFile: file, atomically: true, encoding: .utf8)
            let documents = [
                // An external general entity in the content.
                """
                <?xml version="1.0"?>
                <!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://\(file)">]>
                <urlset><url><loc>http://h/&xxe;</loc></url><url><loc>http://h/ok</loc></url></urlset>
                """,
                // An external parameter entity in the internal subset.
                """
                <?xml version="1.0"?>
                <!DOCTYPE urlset [<!ENTITY % p SYSTEM "file://\(file)"> %p;]>
                <urlset><url><loc>http://h/ok</loc></url></urlset>
                """,
                // An external DTD.
                """
                <?xml version="1.0"?>
                <!DOCTYPE urlset SYSTEM "file://\(file)">
                <urlset><url><loc>http://h/ok</loc></url></urlset>
                """,
                // An external entity in an attribute default.
                """
                <?xml version="1.0"?>
                <!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://\(file)"><!ATTLIST loc a CDATA "&xxe;">]>
                <urlset><url><loc>http://h/ok</loc></url></urlset>
                """,
            ]
            for xml in documents {
                let outcome: String
                do {
                    let sitemap = try Sitemap(parsing: Array(xml.utf8), url: "http://h/xxe.xml")
                    outcome = sitemap.locations.joined(separator: " ")
                    XCTAssertEqual(sitemap.locations, ["http://h/ok"], xml)
                } catch {
                    outcome = "\(error)"
                }
                XCTAssertFalse(outcome.contains(secret), "the file's content came through: \(outcome)")
            }
        }
    }

    func testAnEntryThatNeedsAnEntityExpandedIsDropped() throws {
        let xml = """
            <!DOCTYPE urlset [<!ENTITY site "http://elsewhere">]>
            <urlset><url><loc>&site;/x</loc></url><url><loc>http://h/kept</loc></url></urlset>
            """
        XCTAssertEqual(try Sitemap(parsing: Array(xml.utf8), url: "http://h/s.xml").locations, ["http://h/kept"])
    }

    // MARK: - robots.txt

    func testRobotsSitemapLinesApplyToEveryAgentInOrderOnceEach() {
        let text = """
            Sitemap: http://h/first.xml
            User-agent: a
            sitemap:http://h/second.xml.gz
            User-agent: b
            Disallow: /private
            SITEMAP: https://other.example/third.xml # cross-submitted
            Sitemap: /relative.xml
            Sitemap: ftp://h/not-http.xml
            Sitemap: http://h/first.xml
            """
        for agent in ["a", "b", "somebot"] {
            XCTAssertEqual(Robots(parsing: text, userAgent: agent).sitemaps,
                           ["http://h/first.xml", "http://h/second.xml.gz", "https://other.example/third.xml"], agent)
        }
        // A Sitemap line does not end a run of User-agent lines: a and b share one group.
        XCTAssertFalse(Robots(parsing: text, userAgent: "a").allows("/private"))
        XCTAssertEqual(Robots.allowAll.sitemaps, [])
    }

    // MARK: - Discovery

    func testDiscoveryOverHTTPFollowsRobotsIndexesAndGzipSitemaps() throws {
        var hits: [String: Int] = [:]
        var served: [String: HTTPResponse] = [:]
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { request in
            let path = String(request.path)
            hits[path, default: 0] += 1
            return served[path] ?? HTTPResponse(status: 404, text: "no")
        }
        server.start()
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        let base = "http://127.0.0.1:\(server.address.port)"
        served["/robots.txt"] = HTTPResponse(text: "User-agent: *\nDisallow: /private\nSitemap: \(base)/index.xml\n")
        served["/index.xml"] = HTTPResponse(status: 200, headers: ["Content-Type": "application/xml"], body: index([
            "\(base)/pages.xml", "\(base)/more.xml.gz", "\(base)/index.xml", "\(base)/missing.xml", "ftp://h/x.xml",
        ]))
        served["/pages.xml"] = HTTPResponse(status: 200, body: urlset(["\(base)/a", "\(base)/b#frag", "mailto:x@h", "\(base)/a"]))
        // A .gz file as a static server sends it: gzip bytes, no Content-Encoding.
        served["/more.xml.gz"] = HTTPResponse(status: 200, headers: ["Content-Type": "application/gzip"],
                                              body: try gzipped(urlset(["\(base)/c", "\(base)/d"], namespaced: false)))
        served["/sitemap.xml"] = HTTPResponse(status: 200, body: urlset(["\(base)/e", "\(base)/b"]))

        let client = HTTPClient()
        defer { client.close() }
        let result = try withTimeout(20) {
            try SitemapDiscovery.discover(origin: base + "/some/page") { url in
                let response = try client.get(url)
                return (response.status, response.body)
            }
        }
        XCTAssertEqual(result.pages, ["a", "b", "c", "d", "e"].map { "\(base)/\($0)" })
        XCTAssertEqual(result.errors, [SitemapError(url: "\(base)/missing.xml", message: "HTTP status 404")])
        XCTAssertEqual(result.sitemaps, ["index.xml", "pages.xml", "more.xml.gz", "missing.xml", "sitemap.xml"].map { "\(base)/\($0)" })
        XCTAssertEqual(hits, ["/robots.txt": 1, "/index.xml": 1, "/pages.xml": 1, "/more.xml.gz": 1, "/missing.xml": 1, "/sitemap.xml": 1])
    }

    func testDiscoveryReadsTheRobotsSitemapsItIsGivenWithoutFetchingRobotsTxt() throws {
        let site = FakeSite(["http://h/listed.xml": (200, urlset(["http://h/p"]))])
        let result = try SitemapDiscovery.discover(origin: "http://h", robotsSitemaps: ["http://h/listed.xml"], fetch: site.fetch)
        XCTAssertEqual(result.pages, ["http://h/p"])
        XCTAssertEqual(site.fetched, ["http://h/listed.xml", "http://h/sitemap.xml"])
    }

    func testAMissingDefaultSitemapIsNoErrorButAMalformedOrFailingOneIs() throws {
        let quiet = try SitemapDiscovery.discover(origin: "http://h", robotsSitemaps: [], fetch: FakeSite([:]).fetch)
        XCTAssertEqual(quiet.errors, [])
        XCTAssertEqual(quiet.sitemaps, ["http://h/sitemap.xml"])

        let site = FakeSite([
            "http://h/index.xml": (200, index(["http://h/broken.xml", "http://h/down.xml", "http://h/good.xml"])),
            "http://h/broken.xml": (200, Array("<urlset><url>".utf8)),
            "http://h/good.xml": (200, urlset(["http://h/page"])),
            "http://h/sitemap.xml": (500, []),
        ], failing: ["http://h/down.xml"])
        let result = try SitemapDiscovery.discover(origin: "http://h", robotsSitemaps: ["http://h/index.xml"], fetch: site.fetch)
        XCTAssertEqual(result.pages, ["http://h/page"])
        XCTAssertEqual(result.errors.map(\.url), ["http://h/broken.xml", "http://h/down.xml", "http://h/sitemap.xml"])
        XCTAssertTrue(result.errors[0].message.contains("malformed XML"), result.errors[0].message)
        XCTAssertTrue(result.errors[1].message.contains("connection refused"), result.errors[1].message)
        XCTAssertEqual(result.errors[2].message, "HTTP status 500")
    }

    func testIndexesAreFollowedOnlyToTheDepthLimit() throws {
        // index0 -> index1 -> ... -> index5 -> pages
        var files: [String: (Int, [UInt8])] = ["http://h/pages.xml": (200, urlset(["http://h/deep"]))]
        for level in 0..<6 {
            files["http://h/index\(level).xml"] = (200, index([level == 5 ? "http://h/pages.xml" : "http://h/index\(level + 1).xml"]))
        }
        let site = FakeSite(files)
        var limits = SitemapDiscovery.Limits()
        limits.maxDepth = 3
        let result = try SitemapDiscovery.discover(origin: "http://h", robotsSitemaps: ["http://h/index0.xml"],
                                                   limits: limits, fetch: site.fetch)
        XCTAssertEqual(result.pages, [])
        XCTAssertEqual(result.sitemaps, (0...3).map { "http://h/index\($0).xml" } + ["http://h/sitemap.xml"])
        XCTAssertEqual(result.errors.map(\.url), ["http://h/index3.xml"])
        XCTAssertTrue(result.errors[0].message.contains("deeper than 3"), result.errors[0].message)
    }

    func testEachSitemapIsFetchedOnceEvenWhenIndexesNameEachOther() throws {
        let site = FakeSite([
            "http://h/a.xml": (200, index(["http://h/b.xml", "http://h/a.xml", "HTTP://H:80/a.xml#again"])),
            "http://h/b.xml": (200, index(["http://h/a.xml", "http://h/pages.xml", "http://h/sitemap.xml"])),
            "http://h/pages.xml": (200, urlset(["http://h/p"])),
            "http://h/sitemap.xml": (200, index(["http://h/a.xml"])),
        ])
        let result = try SitemapDiscovery.discover(origin: "http://h", robotsSitemaps: ["http://h/a.xml"], fetch: site.fetch)
        XCTAssertEqual(result.pages, ["http://h/p"])
        XCTAssertEqual(site.fetched, ["http://h/a.xml", "http://h/b.xml", "http://h/pages.xml", "http://h/sitemap.xml"])
        XCTAssertEqual(result.errors, [])
    }

    func testNoMoreThanTheLimitOfSitemapsIsFetched() throws {
        var files: [String: (Int, [UInt8])] = ["http://h/index.xml": (200, index((0..<10).map { "http://h/s\($0).xml" }))]
        for i in 0..<10 { files["http://h/s\(i).xml"] = (200, urlset(["http://h/p\(i)"])) }
        let site = FakeSite(files)
        var limits = SitemapDiscovery.Limits()
        limits.maxSitemaps = 5
        let result = try SitemapDiscovery.discover(origin: "http://h", robotsSitemaps: ["http://h/index.xml"],
                                                   limits: limits, fetch: site.fetch)
        XCTAssertEqual(site.fetched.count, 5)
        XCTAssertEqual(result.pages, (0..<4).map { "http://h/p\($0)" })
        XCTAssertEqual(result.errors.map(\.url), ["http://h/s4.xml"])
    }

    func testAKilledOrTimedOutFetchEndsDiscoveryWithThatError() {
        XCTAssertThrowsError(try SitemapDiscovery.discover(origin: "http://h", robotsSitemaps: ["http://h/a.xml"]) { _ in
            throw GreenletExit()
        }) { error in
            XCTAssertTrue(error is GreenletExit, "\(error)")
        }
        XCTAssertThrowsError(try withTimeout(0.05) {
            try SitemapDiscovery.discover(origin: "http://h") { _ in
                try Green.sleep(10)
                return (200, [])
            }
        }) { error in
            XCTAssertTrue(error is TimeoutError, "\(error)")
        }
    }

    // MARK: - Helpers

    /// A site in a dictionary; URLs in `failing` throw as a refused
    /// connection would, others absent answer 404.
    private final class FakeSite {
        let files: [String: (Int, [UInt8])]
        let failing: Set<String>
        var fetched: [String] = []

        init(_ files: [String: (Int, [UInt8])], failing: Set<String> = []) {
            self.files = files
            self.failing = failing
        }

        func fetch(_ url: String) throws -> (status: Int, body: [UInt8]) {
            fetched.append(url)
            if failing.contains(url) { throw TestError("connection refused") }
            let (status, body) = files[url] ?? (404, [])
            return (status, body)
        }
    }

    private func gzipped(_ bytes: [UInt8]) throws -> [UInt8] {
        var result: [UInt8] = []
        try withTemporaryDirectory { dir in
            let file = try GzipMemberFile(creating: dir + "/x.gz")
            try file.writeMember(bytes)
            try file.close()
            result = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/x.gz")))
        }
        return result
    }

    /// What `body` wrote on file descriptor 2.
    private func capturingStderr(_ body: () throws -> Void) throws -> String {
        var output = ""
        try withTemporaryDirectory { dir in
            let path = dir + "/stderr"
            let capture = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard capture >= 0 else { throw TestError("open: errno \(errno)") }
            let saved = dup(2)
            dup2(capture, 2)
            close(capture)
            defer {
                dup2(saved, 2)
                close(saved)
            }
            try body()
            output = try String(contentsOfFile: path, encoding: .utf8)
        }
        return output
    }
}
