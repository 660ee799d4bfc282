import Foundation
import Green
import GreenHTTP
import XCTest
import GreenTestSupport

/// Bodies that stream through the HTTP client: responses read as they
/// arrive (`open`), request bodies from producers and files, and
/// `Expect: 100-continue`.
final class HTTPClientBodyStreamingTests: GreenTestCase {
    private var peers: [UInt16] = []
    private var received: [HTTPRequest] = []

    /// Five megabytes in a pattern a reader can check.
    /// 2 MiB that are not all alike, made without a closure call per byte
    /// (slow under ThreadSanitizer, in a test bounded in time).
    private static let big: [UInt8] = [UInt8](unsafeUninitializedCapacity: 2 * 1024 * 1024) { buffer, count in
        for i in buffer.indices { buffer[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 12) }
        count = buffer.count
    }

    /// Runs `body`, within 20 s, with the base URL of a site on loopback
    /// (the paths below) and a client, closed afterwards.
    private func withAClientOfTheSite(_ body: (_ base: String, _ client: HTTPClient) throws -> Void) throws {
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { [self] request in
            peers.append(request.peer?.port ?? 0)
            received.append(request)
            switch String(request.path) {
            case "/big":
                var r = HTTPResponse()
                r.bodyWriter = { w in
                    var at = 0
                    while at < Self.big.count {
                        let end = min(Self.big.count, at + 100_000)
                        try w.write(Array(Self.big[at..<end]))
                        at = end
                    }
                }
                return r
            case "/sized":
                return HTTPResponse(status: 200, body: Array(Self.big[..<300_000]))
            case "/echo":
                return HTTPResponse(status: 200, body: request.body)
            case "/temporary":
                return HTTPResponse(status: 307, headers: ["Location": "/echo"])
            default:
                return HTTPResponse(status: 404, text: "no")
            }
        }
        try whileServing(server) { port in
            let client = HTTPClient()
            defer { client.close() }
            try withTimeout(20) { try body("http://127.0.0.1:\(port)", client) }
        }
    }

    func testABodyIsReadPieceByPieceAndTheConnectionReusedAfterItsEnd() throws {
        try withAClientOfTheSite { base, client in
            let download = try client.open(url: base + "/big")
            XCTAssertEqual(download.response.status, 200)
            var got: [UInt8] = []
            var pieces = 0
            while let piece = try download.next() {
                XCTAssertLessThanOrEqual(piece.count, 64 * 1024)
                XCTAssertFalse(piece.isEmpty)
                got += piece
                pieces += 1
            }
            XCTAssertTrue(got == Self.big, "the body arrived whole and in order")
            XCTAssertGreaterThan(pieces, 1)
            XCTAssertTrue(download.isComplete)
            XCTAssertEqual(download.response.bodyBytes, Self.big.count)
            XCTAssertNil(try download.next(), "the end stays the end")
            _ = try client.get(base + "/echo")
            XCTAssertEqual(Set(peers).count, 1, "the connection went back to the pool")
        }
    }

    func testReadIntoAndAForLoopReadTheSameBytes() throws {
        try withAClientOfTheSite { base, client in
            let a = try client.open(url: base + "/sized")
            let viaRead = try readToTheEnd(bufferSize: 7_777) { try a.read(into: $0) }
            let b = try client.open(url: base + "/sized")
            var viaLoop: [UInt8] = []
            for piece in b { viaLoop += piece }
            XCTAssertNil(b.error)
            XCTAssertTrue(viaRead == Array(Self.big[..<300_000]))
            XCTAssertTrue(viaLoop == viaRead)
        }
    }

    func testClosingEarlyClosesTheConnectionInsteadOfReusingIt() throws {
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))
        try withAClientOfTheSite { base, client in
            let download = try client.open(url: base + "/big")
            XCTAssertNotNil(try download.next())
            download.close()
            XCTAssertTrue(download.response.bodyCut)
            XCTAssertNil(try download.next(), "closed")
            _ = try client.get(base + "/echo")
            XCTAssertEqual(Set(peers).count, 2, "the half-read connection was not reused")
        }
        // The server stopped, every connection of both sides closed.
        let after = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))
        XCTAssertTrue(after.subtracting(before).isEmpty, "descriptors left open: \(after.subtracting(before))")
    }

    /// A body cut short by the server is an error, not a short body.
    func testABodyCutShortIsAnError() throws {
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        let serving = spawn { () throws -> Void in
            let (c, _) = try listener.accept()
            defer { c.close() }
            _ = try c.recv(timeout: 10)
            try c.sendAll(Array("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".utf8) + [UInt8](repeating: 7, count: 50_000))
        }
        defer { _ = try? serving.kill(timeout: 5); listener.close() }
        let client = HTTPClient()
        defer { client.close() }
        try withTimeout(20) {
            let download = try client.open(url: "http://127.0.0.1:\(listener.localAddress!.port)/")
            var got = 0
            XCTAssertThrowsError(try { while let p = try download.next() { got += p.count } }()) { error in
                guard let e = error as? HTTPClientError, case .parse(let p) = e.kind, p.kind == .truncated else {
                    return XCTFail("\(error)")
                }
            }
            XCTAssertEqual(got, 50_000)
        }
    }

    // MARK: - Request bodies

    func testRequestBodiesFromAProducerChunksAndAFileArriveWhole() throws {
        try withAClientOfTheSite { base, client in
            // Unknown length: chunked.
            var left = 40
            let produced = try client.send(method: "POST", url: base + "/echo", body: .stream(length: nil) {
                guard left > 0 else { return nil }
                left -= 1
                return Array(Self.big[(left * 10_000)..<((left + 1) * 10_000)])
            })
            XCTAssertEqual(produced.body.count, 400_000)
            XCTAssertEqual(received.last?.headers["Transfer-Encoding"], "chunked")
            XCTAssertTrue(produced.body == (0..<40).reversed().flatMap { Self.big[($0 * 10_000)..<(($0 + 1) * 10_000)] })

            // Known length: Content-Length, no chunks.
            let sized = try client.send(method: "PUT", url: base + "/echo",
                                        body: .stream(length: 6) { left == 0 ? { left = -1; return Array("abcdef".utf8) }() : nil })
            XCTAssertEqual(sized.text, "abcdef")
            XCTAssertEqual(received.last?.headers["Content-Length"], "6")

            XCTAssertEqual(try client.send(method: "POST", url: base + "/echo", body: .chunks([[1, 2], [], [3]])).body, [1, 2, 3])

            try withTemporaryDirectory { dir in
                let path = dir + "/upload.bin"
                try Data(Self.big[..<700_000]).write(to: URL(fileURLWithPath: path))
                let r = try client.send(method: "POST", url: base + "/echo", body: .file(path))
                XCTAssertTrue(r.body == Array(Self.big[..<700_000]))
                // A 307 keeps the body: the file is read again.
                let again = try client.send(method: "POST", url: base + "/temporary", body: .file(path))
                XCTAssertEqual(again.body.count, 700_000)
                XCTAssertEqual(again.redirects.count, 1)
            }
        }
    }

    func testAStreamedBodyIsNotSentTwiceAndMismatchedLengthsAreErrors() throws {
        try withAClientOfTheSite { base, client in
            var calls = 0
            let r = try client.send(method: "POST", url: base + "/temporary", body: .stream(length: nil) {
                calls += 1
                return calls == 1 ? [1, 2, 3] : nil
            })
            XCTAssertEqual(r.status, 307, "a producer's body cannot follow a 307: the response comes back")
            XCTAssertEqual(calls, 2)
            // The same through open(): the redirect comes back as the stream's response.
            calls = 0
            let opened = try client.open(method: "POST", url: base + "/temporary", body: .stream(length: nil) {
                calls += 1
                return calls == 1 ? [1, 2, 3] : nil
            })
            XCTAssertEqual(opened.response.status, 307)
            XCTAssertEqual(opened.response.headers["Location"], "/echo")
            XCTAssertEqual(try opened.readAll(), [])
            XCTAssertTrue(opened.isComplete)

            XCTAssertThrowsError(try client.send(method: "POST", url: base + "/echo",
                                                 body: .stream(length: 10) { calls += 1; return calls < 4 ? [0] : nil })) {
                guard let e = $0 as? HTTPClientError, case .requestBody(let why) = e.kind else { return XCTFail("\($0)") }
                XCTAssertTrue(why.contains("not the declared 10"), why)
            }
            XCTAssertThrowsError(try client.send(method: "POST", url: base + "/echo", body: .file("/nonexistent/x"))) {
                guard let e = $0 as? HTTPClientError, case .requestBody(let why) = e.kind else { return XCTFail("\($0)") }
                XCTAssertTrue(why.contains("/nonexistent/x"), why)
            }
            // The client is still usable.
            XCTAssertEqual(try client.send(method: "POST", url: base + "/echo", body: [9]).body, [9])
        }
    }

    // MARK: - Expect: 100-continue

    /// A raw server: reads a request head, then answers as `answer` says;
    /// once `body` is done, the answer must end by itself (it is joined).
    private func withRawServer(_ answer: @escaping (Socket, String) throws -> Void,
                               _ body: (UInt16) throws -> Void) throws {
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        let serving = spawn { () throws -> Void in
            let (c, _) = try listener.accept()
            defer { c.close() }
            var head: [UInt8] = []
            while !head.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
                let b = try c.recv(maxBytes: 1, timeout: 10)
                if b.isEmpty { return }
                head += b
            }
            try answer(c, String(decoding: head, as: UTF8.self))
        }
        defer { _ = try? serving.kill(timeout: 5); listener.close() }
        try body(listener.localAddress!.port)
        XCTAssertNoThrow(try serving.get(timeout: 8), "the raw server's answer did not end")
    }

    /// Sends `count` bytes with `method` to the server on `port`, through a
    /// client that announces bodies over 1,000 bytes and waits long for
    /// the answer (the tests' servers answer at once).
    private func sendAnnounced(_ method: String, _ count: Int, to port: UInt16) throws -> HTTPClientResponse {
        var options = HTTPClient.Options()
        options.expectContinueThreshold = 1_000
        options.expectContinueTimeout = 30
        let client = HTTPClient(options: options)
        defer { client.close() }
        return try withTimeout(20) {
            try client.send(method: method, url: "http://127.0.0.1:\(port)/x", body: [UInt8](repeating: 5, count: count))
        }
    }

    func testALargeBodyWaitsForOneHundredContinue() throws {
        var bodySeen: [UInt8] = []
        var headSeen = ""
        try withRawServer({ c, head in
            headSeen = head
            try c.sendAll(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
            while bodySeen.count < 2_000 { bodySeen += try c.recv(timeout: 10) }
            try c.sendAll(Array("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok".utf8))
        }) { port in
            let r = try sendAnnounced("PUT", 2_000, to: port)
            XCTAssertEqual(r.status, 201)
            XCTAssertTrue(headSeen.contains("Expect: 100-continue\r\n"), headSeen)
            XCTAssertEqual(bodySeen, [UInt8](repeating: 5, count: 2_000))
        }
    }

    func testAServerThatAnswersFirstGetsNoBody() throws {
        var extra: [UInt8] = []
        try withRawServer({ c, _ in
            try c.sendAll(Array("HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig".utf8))
            // Whatever the client sends next, until it closes.
            while true {
                let b = try c.recv(timeout: 10)
                if b.isEmpty { break }
                extra += b
            }
        }) { port in
            let r = try sendAnnounced("POST", 5_000, to: port)
            XCTAssertEqual(r.status, 413)
            XCTAssertEqual(r.text, "big")
            // The server reads until the client closes: it does only if
            // the connection, its body unsent, was not kept.
        }
        XCTAssertEqual(extra, [], "the body was sent though the server had answered")
    }
}
