import Foundation
import Green
@_spi(Fuzzing) import GreenHTTP
import XCTest
import GreenTestSupport

/// The HTTP client against GreenHTTP's own server on loopback.
final class HTTPClientTests: GreenTestCase {
    private var gzipped: [UInt8] = []
    private var peers: Set<UInt16> = []

    private func withSite(_ body: (String) throws -> Void) throws {
        // A gzip body made by the system's gzip, to decode.
        let gz = try Subprocess(["gzip", "-c"])
        gzipped = try withTimeout(10) { try gz.communicate(input: Array(String(repeating: "zipped ", count: 100).utf8)).stdout }
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { [self] request in
            if let p = request.peer?.port { peers.insert(p) }
            let path = String(request.path)
            switch path {
            case "/hello":
                return HTTPResponse(text: "hello")
            case "/chunked":
                var r = HTTPResponse()
                r.bodyWriter = { w in try w.write("one,"); try w.write("two") }
                return r
            case "/gzip":
                return HTTPResponse(status: 200, headers: ["Content-Encoding": "gzip"], body: gzipped)
            case "/bad-gzip":
                return HTTPResponse(status: 200, headers: ["Content-Encoding": "gzip"], body: [1, 2, 3, 4])
            case "/loop-a":
                return HTTPResponse(status: 302, headers: ["Location": "/loop-b"])
            case "/loop-b":
                return HTTPResponse(status: 302, headers: ["Location": "loop-a"])
            case "/slow":
                try Green.sleep(2)
                return HTTPResponse(text: "late")
            case "/big":
                return HTTPResponse(status: 200, body: [UInt8](repeating: 65, count: 100_000))
            case "/echo":
                return HTTPResponse(status: 200, body: Array("\(request.method) ".utf8) + request.body)
            default:
                if path.hasPrefix("/redirect/"), let n = Int(path.dropFirst("/redirect/".count)) {
                    return n == 0 ? HTTPResponse(text: "arrived")
                        : HTTPResponse(status: 301, headers: ["Location": "/redirect/\(n - 1)"])
                }
                return HTTPResponse(status: 404, text: "no")
            }
        }
        try whileServing(server) { port in try body("http://127.0.0.1:\(port)") }
    }

    /// A host that does not resolve is an HTTPClientError like any other
    /// failure of the request, naming the URL (a crawl sees which one).
    func testAHostThatDoesNotResolveIsAClientErrorNamingTheURL() throws {
        let client = HTTPClient()
        defer { client.close() }
        XCTAssertThrowsError(try withTimeout(10) { try client.get("http://no-such-host.invalid/x") }) { error in
            guard let e = error as? HTTPClientError, case .resolution(let failure) = e.kind else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(failure.host, "no-such-host.invalid")
            XCTAssertTrue("\(e)".hasPrefix("http://no-such-host.invalid/x: "), "\(e)")
        }
    }

    func testGetReturnsStatusHeadersAndBody() throws {
        try withSite { base in
            let client = HTTPClient()
            let r = try withTimeout(10) { try client.get(base + "/hello") }
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.text, "hello")
            XCTAssertEqual(r.mediaType, "text/plain")
            XCTAssertEqual(try client.get(base + "/nothing").status, 404)
        }
    }

    func testKeepAliveReusesOneConnection() throws {
        try withSite { base in
            var options = HTTPClient.Options()
            options.maxConnectionsPerHost = 1
            let client = HTTPClient(options: options)
            for _ in 0..<10 { XCTAssertEqual(try withTimeout(10) { try client.get(base + "/hello") }.text, "hello") }
            XCTAssertEqual(peers.count, 1)
        }
    }

    func testConcurrentRequestsRespectThePerHostLimit() throws {
        try withSite { base in
            var options = HTTPClient.Options()
            options.maxConnectionsPerHost = 3
            let client = HTTPClient(options: options)
            let gs = (0..<30).map { _ in spawn { try client.get(base + "/hello").status } }
            try withTimeout(20) { try joinAll(gs, raiseError: true) }
            XCTAssertTrue(gs.allSatisfy { $0.value == 200 })
            XCTAssertLessThanOrEqual(peers.count, 3)
        }
    }

    func testChunkedAndGzipBodiesAreDecoded() throws {
        try withSite { base in
            let client = HTTPClient()
            XCTAssertEqual(try withTimeout(10) { try client.get(base + "/chunked") }.text, "one,two")
            XCTAssertEqual(try withTimeout(10) { try client.get(base + "/gzip") }.text,
                           String(repeating: "zipped ", count: 100))
            XCTAssertThrowsError(try withTimeout(10) { try client.get(base + "/bad-gzip") }) { error in
                XCTAssertTrue("\(error)".contains("/bad-gzip"), "\(error)")
            }
        }
    }

    func testRedirectsAreFollowedUpToTheLimitAndLoopsRefused() throws {
        try withSite { base in
            let client = HTTPClient()
            let r = try withTimeout(10) { try client.get(base + "/redirect/3") }
            XCTAssertEqual(r.text, "arrived")
            XCTAssertEqual(r.redirects.count, 3)
            XCTAssertEqual(r.url?.path, "/redirect/0")
            XCTAssertThrowsError(try withTimeout(10) { try client.get(base + "/redirect/11") }) { error in
                guard case .tooManyRedirects(10)? = (error as? HTTPClientError)?.kind else { return XCTFail("\(error)") }
            }
            XCTAssertThrowsError(try withTimeout(10) { try client.get(base + "/loop-a") }) { error in
                guard case .redirectLoop? = (error as? HTTPClientError)?.kind else { return XCTFail("\(error)") }
            }
        }
    }

    func testReadTimeoutAndBodyLimitBecomeClearErrors() throws {
        try withSite { base in
            var options = HTTPClient.Options()
            options.readTimeout = 0.1
            options.limits.maxBodyBytes = 1000
            let client = HTTPClient(options: options)
            XCTAssertThrowsError(try withTimeout(10) { try client.get(base + "/slow") }) { error in
                guard case .timedOut(phase: "read", _)? = (error as? HTTPClientError)?.kind else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains("/slow"))
            }
            XCTAssertThrowsError(try withTimeout(10) { try client.get(base + "/big") }) { error in
                XCTAssertTrue("\(error)".contains("larger than 1000"), "\(error)")
            }
        }
    }

    func testTotalTimeoutCoversTheWholeRequest() throws {
        try withSite { base in
            var options = HTTPClient.Options()
            options.totalTimeout = 0.1
            let client = HTTPClient(options: options)
            XCTAssertThrowsError(try withTimeout(10) { try client.get(base + "/slow") }) { error in
                guard case .timedOut(phase: "total", _)? = (error as? HTTPClientError)?.kind else { return XCTFail("\(error)") }
            }
        }
    }

    func testPostSendsItsBodyAndHeadHasNone() throws {
        try withSite { base in
            let client = HTTPClient()
            XCTAssertEqual(try withTimeout(10) { try client.post(base + "/echo", body: Array("payload".utf8)) }.text,
                           "POST payload")
            let head = try withTimeout(10) { try client.head(base + "/big") }
            XCTAssertEqual(head.status, 200)
            XCTAssertEqual(head.body, [])
            XCTAssertEqual(try client.get(base + "/hello").text, "hello")   // the connection is still in step
        }
    }

    func testAHeaderThatWouldStartAnotherLineIsRefusedBeforeAnythingIsSent() throws {
        try withSite { base in
            let client = HTTPClient()
            for headers: HTTPHeaders in [["X-A": "1\r\nX-Injected: yes"], ["X-A": "1\nX-B: 2"], ["X A": "1"], ["X:A": "1"],
                                         ["X-A": "nul\u{0}"]] {
                XCTAssertThrowsError(try withTimeout(10) { try client.get(base + "/hello", headers: headers) }) { error in
                    guard case .invalidHeader? = (error as? HTTPClientError)?.kind else { return XCTFail("\(error)") }
                }
            }
            var options = HTTPClient.Options()
            options.userAgent = "agent\r\nX-Injected: yes"
            XCTAssertThrowsError(try withTimeout(10) { try HTTPClient(options: options).get(base + "/hello") })
            // A tab inside a value is allowed.
            XCTAssertEqual(try withTimeout(10) { try client.get(base + "/hello", headers: ["X-A": "a\tb"]) }.status, 200)
            XCTAssertTrue(peers.isEmpty || peers.count == 1, "nothing was sent for the refused requests")
        }
    }

    func testAnUnreachablePortAndAnUnknownSchemeAreErrorsNamingTheURL() throws {
        let port = try freeLoopbackPort()
        let client = HTTPClient()
        XCTAssertThrowsError(try withTimeout(10) { try client.get("http://127.0.0.1:\(port)/x") }) { error in
            XCTAssertTrue("\(error)".contains("127.0.0.1:\(port)/x"), "\(error)")
        }
        XCTAssertThrowsError(try client.get("ftp://127.0.0.1/x")) { error in
            guard case .unsupportedScheme("ftp")? = (error as? HTTPClientError)?.kind else { return XCTFail("\(error)") }
        }
    }
}

extension HTTPClientTests {
    func testTheClientsQuickURLReadingAgreesWithFoundation() throws {
        let urls = ["http://example.com/", "http://example.com", "http://Example.COM:8080/a/b?c=d#e",
                    "http://127.0.0.1:80/x", "https://h/p%41", "http://h/a b", "http://h/ä", "http://h:/x",
                    "http://[::1]:8080/", "http://u@h/", "http://h/a]b", "http://h?q", "http://h/p%zz",
                    // Found by the fuzzer: a second "#" (URL encodes it).
                    "http://h#a:8080/b?x=1#f"]
        for u in urls {
            let (quick, careful) = HTTPFuzzing.requestURL(u)
            if let quick { XCTAssertEqual(quick, careful, u) }
        }
        XCTAssertNotNil(HTTPFuzzing.requestURL("http://example.com:8080/a/b?c=d#e").quick, "the common form takes the quick path")
    }
}
