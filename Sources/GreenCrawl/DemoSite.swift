import Foundation
import Green
import GreenHTTP

/// The site `crawl --demo` serves itself on loopback: `pages` generated
/// HTML pages linking to each other (every page reachable), with the
/// trouble a real crawl meets planted in it: broken links (404), a
/// redirect chain, a page slower than the crawl's timeout, a robots.txt
/// that forbids /private/, links to another host, fragments and relative
/// forms that must normalize to one URL, and a `<base href>` page.
/// `latency` seconds are added to every response.
public final class DemoSite: @unchecked Sendable {
    // `@unchecked Sendable` (handlers on other hubs' threads use the site):
    // configuration is immutable, `counts` is locked; `server` is set and
    // cleared by the thread that starts and stops the site, and never read
    // by handlers.
    public let pages: Int
    public let latency: Double
    /// Seconds /slow takes.
    public let slowSeconds: Double
    /// Bytes of text markup (paragraphs, no links) added to every page:
    /// pages that cost the crawler more to parse than the site to serve.
    public let pageBytes: Int
    private let padding: String
    private var server: HTTPServer?
    /// Requests per path (for tests that count fetches), and requests
    /// being answered now and at most.
    private let counts = Locked((perPath: [String: Int](), inFlight: 0, mostInFlight: 0))

    public init(pages: Int = 3_000, latency: Double = 0, slowSeconds: Double = 3, pageBytes: Int = 0) {
        self.pages = max(pages, 10)
        self.latency = latency
        self.slowSeconds = slowSeconds
        self.pageBytes = max(0, pageBytes)
        var padding = ""
        var n = 0
        while padding.utf8.count < pageBytes {
            padding += "<p class=\"filler\">Paragraph \(n): <b>lorem</b> ipsum dolor sit amet, <i>consectetur</i> "
                + "adipiscing elit, sed do <span>eiusmod</span> tempor incididunt ut labore et dolore.</p>\n"
            n += 1
        }
        self.padding = padding
    }

    /// How many times each path was requested since the site started (or
    /// since the last `resetCounts()`).
    public var fetchCounts: [String: Int] { counts.withLock { $0.perPath } }

    public func resetCounts() {
        counts.withLock { c in
            c.perPath.removeAll()
            c.mostInFlight = 0
        }
    }

    /// The most requests the site was answering at one moment since it
    /// started (or since the last `resetCounts()`).
    public var maxInFlight: Int { counts.withLock { $0.mostInFlight } }

    private func count(_ path: String) {
        counts.withLock { c in
            c.perPath[path, default: 0] += 1
            c.inFlight += 1
            c.mostInFlight = max(c.mostInFlight, c.inFlight)
        }
    }

    private func answered() {
        counts.withLock { $0.inFlight -= 1 }
    }

    /// What a complete crawl of the site must find: pages fetched (HTML
    /// pages, the robots-blocked page reported as an error without a
    /// fetch, broken links, redirects, /slow) and how many of them fail.
    public var expected: (urls: Int, errors: Int) {
        // pages + "/" + /base/ + /redirect/3 (followed to /page/1 by the
        // client) + /slow + /private/secret + broken links (every 10th
        // page links to a missing one).
        let broken = (pages + 9) / 10
        return (pages + 5 + broken, broken + 2)
    }

    /// Starts serving on `address` (by default 127.0.0.1, any free port)
    /// and returns the root. With `ownThread` the site runs on a hub of its
    /// own, on its own OS thread, so that it does not share the crawler's
    /// core; otherwise on the calling hub.
    public func start(on address: SocketAddress? = nil, ownThread: Bool = false) throws -> URL {
        let address = try address ?? SocketAddress(ip: "127.0.0.1", port: 0)
        let server: HTTPServer
        let handler: @Sendable (HTTPRequest) throws -> HTTPResponse = { [self] request in
            let path = String(request.path)
            count(path)
            defer { answered() }
            if latency > 0 { try Green.sleep(latency) }
            return respond(path, host: request.headers["Host"] ?? address.host)
        }
        if ownThread {
            server = try HTTPServer(on: address, workers: 1, handler: handler)
        } else {
            server = try HTTPServer(on: address, handler: handler)
            server.start()
        }
        self.server = server
        let host = server.address.host.contains(":") ? "[\(server.address.host)]" : server.address.host
        return URL(string: "http://\(host):\(server.address.port)/")!
    }


    public func stop() {
        _ = try? server?.stop(timeout: 1)
        server = nil
    }

    private func html(_ title: String, _ body: String) -> HTTPResponse {
        HTTPResponse(text: "<!doctype html><html><head><title>\(title)</title></head><body>\(body)\(padding)</body></html>",
                     contentType: "text/html; charset=utf-8")
    }

    /// The page at `path`; `host` (the request's Host) makes absolute links.
    private func respond(_ path: String, host: String) -> HTTPResponse {
        switch path {
        case "/robots.txt":
            return HTTPResponse(text: "User-agent: *\nDisallow: /private/\n")
        case "/":
            // A site map of the first hundred pages, so that a crawl is
            // wide from its first step.
            let links = (0..<min(100, pages)).map { "<a href=\"/page/\($0)\">page \($0)</a>" }.joined(separator: " ")
            return html("demo", links + """
                 <a href="/redirect/3">a redirect chain</a> <a href="/slow">a slow page</a>
                 <a href="/private/secret">forbidden by robots.txt</a> <a href="/base/">a page with base href</a>
                 <a href="http://other.invalid/">another host</a> <a href="mailto:x@y.z">mail</a>
                """)
        case "/slow":
            try? Green.sleep(slowSeconds)
            return html("slow", "finally")
        case "/base/":
            // Relative links resolve against <base href>, not this page.
            return html("base", "<base href=\"/page/\"><a href=\"5\">five</a> <a href=\"6#top\">six</a>")
        default:
            break
        }
        if path.hasPrefix("/redirect/"), let n = Int(path.dropFirst("/redirect/".count)) {
            return n == 0 ? HTTPResponse(status: 302, headers: ["Location": "/page/1"])
                : HTTPResponse(status: 302, headers: ["Location": "/redirect/\(n - 1)"])
        }
        if path.hasPrefix("/page/"), let i = Int(path.dropFirst("/page/".count)), i >= 0, i < pages {
            var state = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 | 1
            func next() -> Int {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                return Int(state % UInt64(pages))
            }
            var links = ["<a href=\"/page/\((i + 1) % pages)\">next</a>",
                         "<a href=\"../page/\(next())#section\">relative</a>",
                         "<a href=\"http://\(host)/page/\(next())\">absolute</a>",
                         "<a href=\"\(next())\">sibling</a>",
                         "<a href=\"/page/\(next())?\">empty query</a>"]
            if i % 10 == 0 { links.append("<a href=\"/missing/\(i)\">broken</a>") }
            return html("page \(i)", "<p>page \(i)</p>" + links.joined(separator: "\n"))
        }
        return HTTPResponse(status: 404, text: "no such page\n")
    }
}
