import Foundation
import GreenCrawl
import XCTest
import GreenTestSupport

/// libxml2's link extraction (HTMLLinkParser) against gumbo's, and fed in
/// every way a body can arrive.
final class LinkExtractionTests: GreenTestCase {
    /// Real pages: Debian's python3-doc (`make deps` installs it), 530
    /// pages of 96 KB on average.
    static let corpusRoot = "/usr/share/doc/python3.11/html"

    static func corpus() throws -> [(url: String, bytes: [UInt8])] {
        guard let walker = FileManager.default.enumerator(atPath: corpusRoot) else {
            XCTFail("no corpus at \(corpusRoot): run make deps (Debian python3-doc)")
            return []
        }
        var pages: [(String, [UInt8])] = []
        for case let path as String in walker where path.hasSuffix(".html") {
            let data = try Data(contentsOf: URL(fileURLWithPath: corpusRoot + "/" + path))
            pages.append(("http://docs.test/" + path, Array(data)))
        }
        XCTAssertGreaterThan(pages.count, 400, "the corpus is Debian's python3-doc HTML")
        return pages.sorted { $0.0 < $1.0 }
    }

    func testLibxml2FindsTheSameLinksAsGumboOnACorpusOfRealPages() throws {
        var pagesWithLinks = 0
        var total = 0
        var differing: [String] = []
        // Every third page keeps the suite quick (it runs five times in
        // CI); green-bench's link_extract_mb_per_s checks all of them.
        for (n, (url, bytes)) in try Self.corpus().enumerated() where n % 3 == 0 {
            let ours = LinkExtractor.linkStrings(in: bytes, pageURL: url, followNofollow: true)
            let oracle = GumboLinkExtractor.linkStrings(in: bytes, pageURL: url)
            // green-bench's stock-gumbo baseline must read what the arena reads.
            if n % 30 == 0 {
                XCTAssertEqual(GumboLinkExtractor.linkStrings(in: bytes, pageURL: url, arena: false), oracle, url)
            }
            if ours != oracle {
                let a = Set(ours), b = Set(oracle)
                differing.append("\(url): only libxml2 \(Array(a.subtracting(b)).prefix(3)), only gumbo \(Array(b.subtracting(a)).prefix(3)), order differs: \(a == b)")
            }
            if !ours.isEmpty { pagesWithLinks += 1 }
            total += ours.count
        }
        XCTAssertEqual(differing, [], "\(differing.count) pages differ")
        XCTAssertGreaterThan(pagesWithLinks, 150)
        print("corpus: \(total) links on \(pagesWithLinks) pages")
    }

    /// A page's links, fed as `pieces`.
    private func links(_ pieces: [ArraySlice<UInt8>], url: String, charset: String? = nil,
                       followNofollow: Bool = false) throws -> [String] {
        let parser = HTMLLinkParser(pageURL: url, charset: charset, followNofollow: followNofollow)
        for p in pieces { p.withUnsafeBytes { parser.feed($0) } }
        return try parser.finish()
    }

    private func links(_ html: String, url: String = "http://h.test/dir/page.html", charset: String? = nil,
                       followNofollow: Bool = false) throws -> [String] {
        try links([Array(html.utf8)[...]], url: url, charset: charset, followNofollow: followNofollow)
    }

    /// Markup that a cut in the wrong place could change: a comment and a
    /// script holding link-like text, entities, unquoted and repeated
    /// attributes, a base that comes late.
    static let trickyPage = """
        <!DOCTYPE html><html><head><title>t &amp; u</title>
        <!-- <a href="/in-comment">no</a> -->
        <script>var s = '<a href="/in-script">'; if (a < b && c > d) {}</script>
        <style>a[href="/in-style"] { color: red }</style>
        <base href="/base/"></head><body>
        <p>text &lt;a href="/escaped"&gt; <a href=plain.html>plain</a>
        <a href="q?a=1&amp;b=2&copy;">entity</a> <A HREF='/UPPER'>upper</A>
        <a href="first.html" href="second.html">repeated</a>
        <map><area href="/area.html" alt=""></map><iframe src="frame.html"></iframe>
        <frameset><frame src="/framed.html"></frameset>
        <a href=" /spaced.html ">spaced</a><a href="#only-fragment">f</a><a href="mailto:a@b.c">m</a>
        <a href="https://other.test:443/x#y">other</a><![CDATA[ <a href="/cdata"> ]]>
        <textarea><a href="/in-textarea"></textarea><a href="/after-textarea">after</a>
        </body></html>
        """

    func testEveryLinkingElementIsFoundAndResolvedAgainstTheBase() throws {
        let found = try links(Self.trickyPage)
        XCTAssertEqual(found, [
            "http://h.test/base/plain.html", "http://h.test/base/q?a=1&b=2%C2%A9", "http://h.test/UPPER",
            "http://h.test/base/first.html", "http://h.test/area.html", "http://h.test/base/frame.html",
            "http://h.test/framed.html", "http://h.test/spaced.html", "http://h.test/base/",
            "https://other.test/x", "http://h.test/cdata", "http://h.test/in-textarea", "http://h.test/after-textarea",
        ])
        // Where libxml2 (an HTML 4 parser that recovers) and gumbo (HTML5)
        // part: markup inside <textarea> and a CDATA section in HTML are
        // read as markup by libxml2 and as text by gumbo, and gumbo drops a
        // <frameset> that comes after the body began.
        let oracle = GumboLinkExtractor.linkStrings(in: Array(Self.trickyPage.utf8), pageURL: "http://h.test/dir/page.html")
        XCTAssertEqual(Set(found).subtracting(oracle),
                       ["http://h.test/cdata", "http://h.test/in-textarea", "http://h.test/framed.html"])
        XCTAssertEqual(Set(oracle).subtracting(found), [])
    }

    func testAPageCutAtEveryByteGivesTheSameLinks() throws {
        let real = try Data(contentsOf: URL(fileURLWithPath: Self.corpusRoot + "/distutils/uploading.html"))
        // The tricky page is shorter than the prescan: with no charset it
        // would reach libxml2 whole, so it is also read with the header's
        // charset, which starts the parser at once and cuts it up.
        for (url, page, charset) in [("http://h.test/dir/page.html", Array(Self.trickyPage.utf8), nil),
                                     ("http://h.test/dir/page.html", Array(Self.trickyPage.utf8), "utf-8"),
                                     ("http://docs.test/distutils/uploading.html", Array(real), nil)] {
            let whole = try links([page[...]], url: url, charset: charset)
            XCTAssertGreaterThan(whole.count, 5)
            for cut in 0...page.count {
                let cutUp = try links([page[..<cut], page[cut...]], url: url, charset: charset)
                if cutUp != whole { XCTFail("\(url) cut at byte \(cut): \(cutUp)"); break }
            }
            XCTAssertEqual(try links(page.indices.map { page[$0...$0] }, url: url, charset: charset), whole, "byte by byte")
        }
    }

    func testNofollowIsRespectedUnlessAsked() throws {
        let page = """
            <a href="/a" rel="nofollow">a</a><a href="/b" rel="noopener NoFollow">b</a><a href="/c" rel="next">c</a>
            """
        XCTAssertEqual(try links(page), ["http://h.test/c"])
        XCTAssertEqual(try links(page, followNofollow: true), ["http://h.test/a", "http://h.test/b", "http://h.test/c"])
        for content in ["noindex, nofollow", "NONE", "nofollow"] {
            let meta = "<html><head><meta name=\"Robots\" content=\"\(content)\"></head><body>\(page)</body></html>"
            XCTAssertEqual(try links(meta), [], content)
            XCTAssertEqual(try links(meta, followNofollow: true).count, 3, content)
        }
        XCTAssertEqual(try links("<meta name=robots content=noindex>" + page).count, 1)
    }

    func testTheCharsetComesFromTheHeaderOrTheDocument() throws {
        // "é" in ISO-8859-1 is the byte E9; links come out as UTF-8, percent-encoded.
        let latin1: [UInt8] = Array("<a href=\"/caf".utf8) + [0xE9] + Array(".html\">x</a>".utf8)
        XCTAssertEqual(try links([latin1[...]], url: "http://h.test/", charset: "ISO-8859-1"), ["http://h.test/caf%C3%A9.html"])
        let meta: [UInt8] = Array("<html><head><meta charset=\"iso-8859-1\"></head><body>".utf8) + latin1
        XCTAssertEqual(try links([meta[...]], url: "http://h.test/"), ["http://h.test/caf%C3%A9.html"])
        let httpEquiv: [UInt8] = Array("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"></head><body>".utf8) + latin1
        XCTAssertEqual(try links([httpEquiv[...]], url: "http://h.test/"), ["http://h.test/caf%C3%A9.html"])
        let utf8 = "<a href=\"/caf\u{E9}.html\">x</a>"
        XCTAssertEqual(try links(utf8, url: "http://h.test/"), ["http://h.test/caf%C3%A9.html"])
        XCTAssertEqual(try links(utf8, url: "http://h.test/", charset: "utf-8"), ["http://h.test/caf%C3%A9.html"])
        // Without any charset, bytes that are not UTF-8 are read as ISO-8859-1.
        XCTAssertEqual(try links([latin1[...]], url: "http://h.test/"), ["http://h.test/caf%C3%A9.html"])
        // An unknown charset name is ignored rather than failing the page.
        XCTAssertEqual(try links(utf8, url: "http://h.test/", charset: "no-such-charset"), ["http://h.test/caf%C3%A9.html"])
    }

    func testMalformedBinaryAndDeeplyNestedInputNeverCrashes() throws {
        var random = SplitMix64(seed: 18)
        var garbage = [UInt8](repeating: 0, count: 200_000)
        for i in garbage.indices { garbage[i] = UInt8(truncatingIfNeeded: random.next()) }
        _ = LinkExtractor.linkStrings(in: garbage, pageURL: "http://h.test/")
        XCTAssertEqual(LinkExtractor.linkStrings(in: [], pageURL: "http://h.test/"), [])
        let nested = String(repeating: "<div><span>", count: 100_000) + "<a href=/deep>x</a>"
        XCTAssertEqual(try links(nested), ["http://h.test/deep"])
        let withNULs: [UInt8] = Array("<a href=\"/x\">".utf8) + [0, 0, 0] + Array("</a><a href=\"/y\">".utf8)
        XCTAssertEqual(try links([withNULs[...]], url: "http://h.test/"), ["http://h.test/x", "http://h.test/y"])
        // libxml2 reads a tag the end of the file cuts off (gumbo, as
        // HTML5, drops it); a body cut by a size limit drops it too.
        let unclosed = "<a href=\"/one\">one<a href=\"/two"
        XCTAssertEqual(try links(unclosed), ["http://h.test/one", "http://h.test/two"])
        let cut = HTMLLinkParser(pageURL: "http://h.test/")
        cut.feed(Array(unclosed.utf8))
        XCTAssertEqual(try cut.finish(truncated: true), ["http://h.test/one"])
    }

    func testAnElevenMegabyteLinkIsReadWithoutHarmToTheLinksAroundIt() throws {
        let long = "/" + String(repeating: "x", count: 11_000_000)
        let page = "<a href=\"/before\">b</a><a href=\"\(long)\">h</a><a href=\"/after\">"
        XCTAssertEqual(try links(page), ["http://h.test/before", "http://h.test\(long)", "http://h.test/after"])
    }

    func testABytePageCharsetDoesNotDefineEndsNoLinkExtraction() throws {
        // 0x9D is undefined in windows-1252, 0x80 and up in ASCII, 0xFF in
        // Shift_JIS: each becomes U+FFFD and the page reads on.
        for (charset, odd) in [("windows-1252", UInt8(0x9D)), ("us-ascii", 0xE9), ("shift_jis", 0xFF), ("euc-jp", 0xFF)] {
            let page: [UInt8] = Array("<a href=/before>b</a><p>caf".utf8) + [odd] + Array("</p><a href=/after>a</a>".utf8)
            XCTAssertEqual(try links([page[...]], url: "http://h.test/", charset: charset),
                           ["http://h.test/before", "http://h.test/after"], charset)
            // Piece by piece too (the odd byte alone, and a piece ending in it).
            XCTAssertEqual(try links(page.indices.map { page[$0...$0] }, url: "http://h.test/", charset: charset),
                           ["http://h.test/before", "http://h.test/after"], charset)
        }
        // A two-byte Shift_JIS character in a link, cut between its bytes.
        let sjis: [UInt8] = Array("<a href=/x".utf8) + [0x82, 0xA0] + Array(".html>x</a>".utf8)
        let expected = ["http://h.test/x%E3%81%82.html"]
        XCTAssertEqual(try links([sjis[...]], url: "http://h.test/", charset: "shift_jis"), expected)
        XCTAssertEqual(try links([sjis[..<11], sjis[11...]], url: "http://h.test/", charset: "shift_jis"), expected)
    }

    func testAByteOrderMarkAndAMetaSayingUTF16AreReadAsBrowsersDo() throws {
        // A <meta> naming UTF-16 means UTF-8 (the page is ASCII-compatible
        // if the meta could be read).
        XCTAssertEqual(try links("<meta charset=\"utf-16\"><a href=/one>1</a>", url: "http://h.test/"), ["http://h.test/one"])
        // A UTF-16 page says so with its byte-order mark, over the header.
        let text = "<a href=/one>1</a><a href=/tw\u{F6}>2</a>"
        let le: [UInt8] = [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        XCTAssertEqual(try links([le[...]], url: "http://h.test/"), ["http://h.test/one", "http://h.test/tw%C3%B6"])
        XCTAssertEqual(try links([le[...]], url: "http://h.test/", charset: "iso-8859-1"),
                       ["http://h.test/one", "http://h.test/tw%C3%B6"])
        let be: [UInt8] = [0xFE, 0xFF] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        XCTAssertEqual(try links(be.indices.map { be[$0...$0] }, url: "http://h.test/"),
                       ["http://h.test/one", "http://h.test/tw%C3%B6"])
    }
}
