import Foundation
import Green
import GreenHTTP
import XCTest
import GreenTestSupport

/// `HTTPClient.stream`: bodies handed over as they arrive, decoded, in
/// bounded pieces, stopped at will; and the exchanges as transferred.
final class HTTPStreamingTests: GreenTestCase {
    /// 3 MB of text that compresses well, and its gzip (by the system's gzip).
    private let plain: [UInt8] = Array((0..<60_000).map { "line \($0) of the streamed body\n" }.joined().utf8)

    private func withSite(_ body: (_ base: String, _ connections: () -> Int) throws -> Void) throws {
        let gz = try Subprocess(["gzip", "-c"])
        let gzipped = try withTimeout(20) { try gz.communicate(input: plain).stdout }
        let peers = Locked(Set<UInt16>())
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { [plain] request in
            if let p = request.peer?.port { peers.withLock { _ = $0.insert(p) } }
            switch String(request.path) {
            case "/gzip-chunked":
                var r = HTTPResponse(status: 200, headers: ["Content-Encoding": "gzip", "Content-Type": "text/plain"])
                r.bodyWriter = { w in
                    var at = 0
                    while at < gzipped.count {
                        let n = min(7_000, gzipped.count - at)
                        try w.write(Array(gzipped[at..<(at + n)]))
                        at += n
                    }
                }
                return r
            case "/plain":
                return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: plain)
            case "/moved":
                return HTTPResponse(status: 301, headers: ["Location": "/plain"], body: Array("moved".utf8))
            case "/gzip-then-zeros":
                return HTTPResponse(status: 200, headers: ["Content-Encoding": "gzip"],
                                    body: Array(gzipped[0..<gzipped.count]) + [UInt8](repeating: 0, count: 2_000_000))
            case "/empty-deflate-blocks":
                // Raw deflate: stored blocks of length 0, not final, for ever.
                let block: [UInt8] = [0x00, 0x00, 0x00, 0xFF, 0xFF]
                return HTTPResponse(status: 200, headers: ["Content-Encoding": "deflate"],
                                    body: Array((0..<400_000).map { _ in block }.joined()))
            case "/bad-gzip":
                return HTTPResponse(status: 200, headers: ["Content-Encoding": "gzip"], body: Array(gzipped[0..<1000]) + [1, 2, 3])
            default:
                return HTTPResponse(status: 404, text: "no")
            }
        }
        server.start()
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        try body("http://127.0.0.1:\(server.address.port)") { peers.withLock { $0.count } }
    }

    func testAGzippedChunkedBodyArrivesDecodedInBoundedPieces() throws {
        try withSite { base, _ in
            var options = HTTPClient.Options()
            options.limits.maxBodyBytes = 1_000_000   // smaller than the body: limits bind what is kept
            let client = HTTPClient(options: options)
            var got: [UInt8] = []
            var pieces = 0
            var largest = 0
            var heads: [Int] = []
            let r = try withTimeout(20) {
                try client.stream(url: base + "/gzip-chunked", head: { heads.append($0.status); return true }) { piece in
                    pieces += 1
                    largest = max(largest, piece.count)
                    got.append(contentsOf: piece)
                    return true
                }
            }
            XCTAssertEqual(heads, [200])
            XCTAssertEqual(got, plain)
            XCTAssertGreaterThanOrEqual(pieces, plain.count / (64 * 1024))
            XCTAssertLessThanOrEqual(largest, 64 * 1024)
            XCTAssertTrue(r.streamed)
            XCTAssertFalse(r.bodyCut)
            XCTAssertEqual(r.bodyBytes, plain.count)
            XCTAssertEqual(r.body, [])
            XCTAssertEqual(r.mediaType, "text/plain")
        }
    }

    func testARedirectsBodyIsNotStreamedAndTheFinalOneIs() throws {
        try withSite { base, _ in
            let client = HTTPClient()
            var heads: [Int] = []
            var got: [UInt8] = []
            let r = try withTimeout(20) {
                try client.stream(url: base + "/moved", head: { heads.append($0.status); return true }) {
                    got.append(contentsOf: $0)
                    return true
                }
            }
            XCTAssertEqual(heads, [200])
            XCTAssertEqual(got, plain)
            XCTAssertEqual(r.urlString, base + "/plain")
            XCTAssertEqual(r.redirects.map(\.absoluteString), [base + "/moved"])
        }
    }

    func testStoppingEarlyCutsTheTransferAndTheConnectionIsNotReused() throws {
        try withSite { base, connections in
            let client = HTTPClient()
            var got = 0
            let r = try withTimeout(20) {
                try client.stream(url: base + "/plain", head: { _ in true }) { piece in
                    got += piece.count
                    return got < 100_000
                }
            }
            XCTAssertTrue(r.bodyCut)
            XCTAssertEqual(r.bodyBytes, got)
            XCTAssertLessThan(got, plain.count)
            // Declining the body at the head cuts it too.
            let declined = try withTimeout(20) { try client.stream(url: base + "/plain", head: { _ in false }) { _ in true } }
            XCTAssertTrue(declined.bodyCut)
            XCTAssertEqual(declined.bodyBytes, 0)
            // Each request had a connection of its own; a whole one is kept.
            _ = try withTimeout(20) { try client.get(base + "/plain") }
            _ = try withTimeout(20) { try client.get(base + "/plain") }
            XCTAssertEqual(connections(), 3)
        }
    }

    func testEveryExchangeIsSeenAsTransferred() throws {
        try withSite { base, _ in
            let client = HTTPClient()
            var exchanges: [HTTPExchange] = []
            _ = try withTimeout(20) {
                try client.stream(url: base + "/moved", exchange: { exchanges.append($0) }, head: { _ in true }) { _ in true }
            }
            XCTAssertEqual(exchanges.map(\.url), [base + "/moved", base + "/plain"])
            XCTAssertEqual(exchanges.map(\.complete), [true, true])
            XCTAssertEqual(exchanges.map(\.remoteAddress), ["127.0.0.1", "127.0.0.1"])
            XCTAssertTrue(String(decoding: exchanges[0].request, as: UTF8.self).hasPrefix("GET /moved HTTP/1.1\r\n"))
            XCTAssertTrue(String(decoding: exchanges[0].response, as: UTF8.self).hasPrefix("HTTP/1.1 301 "))
            XCTAssertTrue(exchanges[1].response.suffix(plain.count).elementsEqual(plain))

            exchanges = []
            var decoded: [UInt8] = []
            _ = try withTimeout(20) {
                try client.stream(url: base + "/gzip-chunked", exchange: { exchanges.append($0) }, head: { _ in true }) {
                    decoded.append(contentsOf: $0)
                    return true
                }
            }
            // The framing and the coding as they crossed the wire.
            let raw = exchanges[0].response
            let text = String(decoding: raw, as: UTF8.self).lowercased()
            XCTAssertTrue(text.contains("transfer-encoding: chunked"))
            XCTAssertTrue(text.contains("content-encoding: gzip"))
            let headEnd = raw.firstRange(of: [13, 10, 13, 10])!.upperBound
            XCTAssertEqual(String(decoding: raw[headEnd...].prefix(6), as: UTF8.self), "1b58\r\n")   // 7,000 in hex
            XCTAssertEqual(decoded, plain)
        }
    }

    func testACorruptOrCutGzipBodyIsADecodingError() throws {
        try withSite { base, _ in
            let client = HTTPClient()
            XCTAssertThrowsError(try withTimeout(20) {
                try client.stream(url: base + "/bad-gzip", head: { _ in true }) { _ in true }
            }) { error in
                XCTAssertTrue("\(error)".contains("/bad-gzip"), "\(error)")
                guard case .decoding = (error as? HTTPClientError)?.kind else { return XCTFail("\(error)") }
            }
        }
    }

    func testACompressedBodyThatStopsExpandingIsCutNotReadForEver() throws {
        try withSite { base, _ in
            let client = HTTPClient()
            for path in ["/gzip-then-zeros", "/empty-deflate-blocks"] {
                var delivered = 0
                XCTAssertThrowsError(try withTimeout(20) {
                    try client.stream(url: base + path, head: { _ in true }) { delivered += $0.count; return true }
                }, path) { error in
                    guard case .decoding(let why)? = (error as? HTTPClientError)?.kind else { return XCTFail("\(error)") }
                    XCTAssertTrue(why.contains("after the end of the compressed body") || why.contains("does not expand"), why)
                }
                XCTAssertLessThanOrEqual(delivered, plain.count, path)
            }
        }
    }
}
