import Glibc
import Green
import GreenHTTP
import XCTest
import GreenTestSupport

/// The server's streaming side: handlers that read request bodies as they
/// arrive, `Expect: 100-continue`, and responses written in pieces.
final class HTTPServerStreamingTests: GreenTestCase {
    /// What the handlers saw, per request.
    private var pieceSizes: [[Int]] = []

    private func withServer(_ handler: @escaping HTTPServer.StreamingHandler, _ body: (UInt16) throws -> Void) throws {
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), streamingHandler: handler)
        try whileServing(server, body)
    }

    /// Sums and counts the body as it comes.
    private func summing(_ request: HTTPRequest, _ body: HTTPRequestBodyStream) throws -> HTTPResponse {
        if request.path == "/refuse" { return HTTPResponse(status: 401, text: "who are you") }
        var sum: UInt64 = 0, count = 0
        var sizes: [Int] = []
        let limit = request.path == "/half" ? 50 : Int.max
        while count < limit, let piece = try body.next() {
            sizes.append(piece.count)
            for b in piece { sum = sum &* 31 &+ UInt64(b) }
            count += piece.count
        }
        pieceSizes.append(sizes)
        return HTTPResponse(text: "\(request.method) \(request.path) \(count) \(sum)")
    }

    private static func checksum(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0) { $0 &* 31 &+ UInt64($1) }
    }

    private func exchange(_ port: UInt16, _ raw: [UInt8], until marker: String? = nil) throws -> String {
        try rawExchange(port, raw, until: marker)
    }

    func testAnUploadIsReadPieceByPieceAsItArrives() throws {
        let upload: [UInt8] = (0..<(12 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 ^ ($0 >> 9)) }
        try withServer(summing) { port in
            let client = HTTPClient()
            defer { client.close() }
            var at = 0
            let r = try withTimeout(30) {
                try client.send(method: "POST", url: "http://127.0.0.1:\(port)/up", body: .stream(length: nil) {
                    guard at < upload.count else { return nil }
                    let end = min(upload.count, at + 300_000)
                    defer { at = end }
                    return Array(upload[at..<end])
                })
            }
            XCTAssertEqual(r.text, "POST /up \(upload.count) \(Self.checksum(upload))")
            let sizes = try XCTUnwrap(pieceSizes.last)
            XCTAssertGreaterThan(sizes.count, 12 * 16, "the handler read the body in pieces")
            XCTAssertLessThanOrEqual(sizes.max() ?? 0, 64 * 1024)
            // A known length, on the same connection.
            let sized = try withTimeout(30) { try client.send(method: "PUT", url: "http://127.0.0.1:\(port)/up", body: [1, 2, 3]) }
            XCTAssertEqual(sized.text, "PUT /up 3 \(Self.checksum([1, 2, 3]))")
        }
    }

    func testPipelinedRequestsWithBodiesLeftHalfReadStayApart() throws {
        try withServer(summing) { port in
            let a = [UInt8](repeating: 7, count: 200_000), b = [UInt8](repeating: 9, count: 20)
            var raw = Array("POST /half HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n".utf8) + a
            raw += Array("POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n".utf8) + b + Array("\r\n0\r\n\r\n".utf8)
            raw += Array("GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
            let reply = try exchange(port, raw)
            // It stopped after its first piece; the rest was dropped.
            let half = try XCTUnwrap(reply.components(separatedBy: "POST /half ").dropFirst().first?.split(separator: " ").first)
            XCTAssertLessThan(Int(half) ?? .max, 200_000, reply)
            XCTAssertTrue(reply.contains("POST /b 20 \(Self.checksum(b))"), reply)
            XCTAssertTrue(reply.hasSuffix("GET /c 0 0"), reply)
            XCTAssertEqual(reply.components(separatedBy: "HTTP/1.1 200 OK").count, 4)
        }
    }

    func testOneHundredContinueComesWithTheFirstReadAndNotWithoutIt() throws {
        try withServer(summing) { port in
            try sendAfterOneHundredContinue(port, "POST /up", body: "hello",
                                            answerEnd: "POST /up 5 \(Self.checksum(Array("hello".utf8)))")
            // A handler that answers without reading: no 100, no body
            // waited for, the connection closed after the answer.
            let refused = try exchange(port, Array("POST /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000000\r\n\r\n".utf8))
            XCTAssertTrue(refused.hasPrefix("HTTP/1.1 401 "), refused)
            XCTAssertFalse(refused.contains("100 Continue"), refused)
            XCTAssertTrue(refused.contains("Connection: close"), refused)
        }
    }

    func testAWholeBodyServerSendsOneHundredContinueAtOnce() throws {
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { request in
            HTTPResponse(text: "got \(request.body.count)")
        }
        try whileServing(server) { port in
            try sendAfterOneHundredContinue(port, "PUT /", body: "abc", answerEnd: "got 3")
        }
    }

    /// Over a new connection to `port`, sends the head of a request
    /// (`request`: its method and path) that expects 100-continue before
    /// `body`; checks that exactly `100 Continue` comes, then sends the
    /// body and reads until the answer ends with `answerEnd` (10 s at most).
    private func sendAfterOneHundredContinue(_ port: UInt16, _ request: String, body: String, answerEnd: String,
                                             file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try Socket.connect(host: "127.0.0.1", port: port, timeout: 5)
        defer { s.close() }
        try withTimeout(10) {
            let head = "\(request) HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
            try s.sendAll(Array(head.utf8))
            var got = ""
            while !got.contains("\r\n\r\n") { got += String(decoding: try s.recv(timeout: 5), as: UTF8.self) }
            XCTAssertEqual(got, "HTTP/1.1 100 Continue\r\n\r\n", file: file, line: line)
            try s.sendAll(Array(body.utf8))
            got = ""
            while !got.hasSuffix(answerEnd) { got += String(decoding: try s.recv(timeout: 5), as: UTF8.self) }
        }
    }

    func testAMalformedOrAbandonedBodyIsAnErrorForTheHandlerAndOthersAreServed() throws {
        let errors = Green.Queue<String>()
        try withServer({ request, body in
            do {
                _ = try body.readAll(limit: 1 << 20)
            } catch {
                try errors.put("\(error)")
                throw error
            }
            return HTTPResponse(text: "ok")
        }) { port in
            // Malformed framing after the handler began to read (its first
            // read sends the 100 the client waits for).
            let c = try Socket.connect(host: "127.0.0.1", port: port, timeout: 5)
            defer { c.close() }
            try withTimeout(10) {
                try c.sendAll(Array("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
                var got = ""
                while !got.contains("\r\n\r\n") { got += String(decoding: try c.recv(timeout: 5), as: UTF8.self) }
                XCTAssertTrue(got.hasPrefix("HTTP/1.1 100 "), got)
                try c.sendAll(Array("5\r\nabcde\r\nzz\r\n".utf8))
                got = ""
                while !got.contains("\r\n\r\n") { got += String(decoding: try c.recv(timeout: 5), as: UTF8.self) }
                XCTAssertTrue(got.hasPrefix("HTTP/1.1 400 "), got)
            }
            // A client that leaves in the middle of its body.
            let s = try Socket.connect(host: "127.0.0.1", port: port, timeout: 5)
            try s.sendAll(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this".utf8))
            s.close()
            let good = try exchange(port, Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi".utf8))
            XCTAssertTrue(good.hasSuffix("ok"), good)
            let first = try errors.get(timeout: 10), second = try errors.get(timeout: 10)
            XCTAssertTrue(first.contains("malformed"), first)
            XCTAssertTrue(second.contains("closed"), second)
        }
    }

    func testAStreamedResponseWithALengthIsSentAsItIs() throws {
        try withServer({ request, _ in
            var r = HTTPResponse(status: 200, headers: ["Content-Length": request.path == "/short" ? "10" : "6"])
            r.bodyWriter = { w in
                try w.write("abc")
                try w.write("def")
            }
            return r
        }) { port in
            let reply = try exchange(port, Array("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            XCTAssertTrue(reply.contains("Content-Length: 6\r\n"), reply)
            XCTAssertFalse(reply.contains("chunked"), reply)
            XCTAssertTrue(reply.hasSuffix("\r\n\r\nabcdef"), reply)
            // Fewer bytes than declared: the connection is closed rather
            // than left with broken framing.
            let short = try exchange(port, Array("GET /short HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            XCTAssertTrue(short.hasSuffix("abcdef"), short)
        }
    }
}
