import Glibc
import Green
import GreenHTTP
import XCTest
import GreenTestSupport

/// The HTTP/1.1 server, spoken to over raw sockets.
final class HTTPServerTests: GreenTestCase {
    private func withServer(_ options: HTTPServer.Options = HTTPServer.Options(),
                            handler: @escaping HTTPServer.Handler,
                            _ body: (UInt16) throws -> Void) throws {
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), options: options, handler: handler)
        try whileServing(server, body)
    }

    private func exchange(_ port: UInt16, _ raw: String, until marker: String? = nil) throws -> String {
        try rawExchange(port, Array(raw.utf8), until: marker)
    }

    private let hello: HTTPServer.Handler = { request in
        if request.path == "/boom" { throw TestError("handler") }
        return HTTPResponse(text: "hello \(request.method) \(request.target) \(request.body.count)")
    }

    /// The reply of a server answering with `hello` to `raw`, sent over a
    /// new connection.
    private func helloServersReply(to raw: String, until marker: String? = nil) throws -> String {
        var reply = ""
        try withServer(handler: hello) { port in reply = try exchange(port, raw, until: marker) }
        return reply
    }

    func testAGetIsAnsweredWithLengthAndDate() throws {
        let reply = try helloServersReply(to: "GET /x?y=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200 OK\r\n"), reply)
        XCTAssertTrue(reply.contains("Content-Length: 18\r\n"), reply)
        XCTAssertTrue(reply.contains("\r\nDate: "), reply)
        XCTAssertTrue(reply.hasSuffix("hello GET /x?y=1 0"), reply)
    }

    func testKeepAliveAndPipelinedRequestsShareOneConnection() throws {
        let two = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        let reply = try helloServersReply(to: two, until: "hello POST /2 3")
        XCTAssertTrue(reply.contains("hello GET /1 0"), reply)
        XCTAssertTrue(reply.contains("hello POST /2 3"), reply)
        XCTAssertEqual(reply.components(separatedBy: "HTTP/1.1 200").count - 1, 2)
    }

    func testAChunkedRequestBodyIsReassembled() throws {
        let reply = try helloServersReply(to: "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                          + "4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n")
        XCTAssertTrue(reply.hasSuffix("hello POST /c 7"), reply)
    }

    func testMalformedRequestsGet400AndTheServerKeepsServing() throws {
        try withServer(handler: hello) { port in
            let bad = try exchange(port, "GARBAGE\r\n\r\n")
            XCTAssertTrue(bad.hasPrefix("HTTP/1.1 400 "), bad)
            XCTAssertTrue(bad.contains("Connection: close"), bad)
            let good = try exchange(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            XCTAssertTrue(good.hasPrefix("HTTP/1.1 200 "), good)
        }
    }

    /// Requests RFC 9112 says a server must refuse, each with the status
    /// it names, and a well-formed request on a new connection after each
    /// (the server keeps serving). Smuggling vectors first: a proxy in
    /// front that read any of these differently would split requests
    /// differently from this server.
    func testAMalformedRequestCorpusGetsTheStatusesRFC9112Names() throws {
        let long = String(repeating: "a", count: 70_000)
        let corpus: [(String, String, Int)] = [
            ("whitespace between a field name and its colon (5.1)", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
            ("a tab there too", "GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", 400),
            ("obs-fold, a field line continued (5.2)", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
            ("Content-Length and Transfer-Encoding (6.3)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("two different Content-Lengths (6.3)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
            ("a Content-Length that is not a number", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400),
            ("chunked not the final coding (6.1)",
             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
            ("a chunk size that is not hex (7.1)",
             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
            ("a NUL in a field value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{0}c\r\n\r\n", 400),
            ("a field name with a separator", "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400),
            ("HTTP/1.1 without Host (3.2)", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
            ("two Host fields (3.2)", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("a space in the request target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("a request target longer than the server reads (3: 414)", "GET /\(long) HTTP/1.1\r\nHost: a\r\n\r\n", 414),
            ("a field line longer than the server reads (431)", "GET / HTTP/1.1\r\nHost: a\r\nX-A: \(long)\r\n\r\n", 431),
        ]
        try withServer(handler: hello) { port in
            var wrong: [String] = []
            for (what, raw, status) in corpus {
                let reply = try exchange(port, raw, until: "\r\n")
                if !reply.hasPrefix("HTTP/1.1 \(status) ") {
                    wrong.append("\(what): wanted \(status), got \(reply.prefix(40).debugDescription)")
                }
            }
            XCTAssertEqual(wrong, [])
            let good = try exchange(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            XCTAssertTrue(good.hasPrefix("HTTP/1.1 200 "), good)
            // White space around a Host value is optional white space, not part of it.
            let spaced = try exchange(port, "GET / HTTP/1.1\r\nHost:  a:8080 \t\r\nConnection: close\r\n\r\n")
            XCTAssertTrue(spaced.hasPrefix("HTTP/1.1 200 "), spaced)
            // HTTP/1.0 needs no Host.
            let old = try exchange(port, "GET / HTTP/1.0\r\n\r\n")
            XCTAssertTrue(old.hasPrefix("HTTP/1.1 200 "), old)
        }
    }

    /// The rules the server adds to http_parser hold wherever the bytes
    /// are cut (a fold's line feed and its white space may come in
    /// different reads), and do not catch well-formed requests.
    func testTheFoldAndWhitespaceRulesHoldAtEverySplit() throws {
        let bad = ["GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n \t c\r\n\r\n",
                   "GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\n c\r\n\r\n",
                   "GET / HTTP/1.1\r\nHost  : a\r\n\r\n"]
        let good = ["GET / HTTP/1.1\r\nHost: a\r\nX-A:  b c \r\nX-B:\r\nX-C: \t d\r\n\r\n",
                    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n \n GET / HTTP/1.1\r\nHost: b\r\n\r\n"]
        for text in bad {
            let bytes = Array(text.utf8)
            for cut in 0...bytes.count {
                XCTAssertThrowsError(try HTTPParsing.requests(inPieces: [Array(bytes[..<cut]), Array(bytes[cut...])]),
                                     "\(text.debugDescription) cut at \(cut)")
            }
        }
        for text in good {
            let bytes = Array(text.utf8)
            let whole = try HTTPParsing.requests(in: bytes)
            for cut in 0...bytes.count {
                let pieces = try HTTPParsing.requests(inPieces: [Array(bytes[..<cut]), Array(bytes[cut...])])
                XCTAssertEqual(pieces.map(\.headers.description), whole.map(\.headers.description), "cut at \(cut)")
            }
            let byteByByte = try HTTPParsing.requests(inPieces: bytes.map { [$0] })
            XCTAssertEqual(byteByByte.map(\.body), whole.map(\.body))
        }
    }

    /// A 101 answer with an `upgrade` closure hands the connection over,
    /// bytes the client sent right after its request included; a request
    /// to upgrade answered otherwise ends its connection.
    func testAnUpgradeHandsTheConnectionOverWithTheBytesAlreadyRead() throws {
        let handler: HTTPServer.Handler = { request in
            guard request.path == "/switch" else { return HTTPResponse(text: "no switch") }
            var r = HTTPResponse(status: 101, headers: ["Upgrade": "echo", "Connection": "Upgrade"])
            r.upgrade = { connection in
                let reader = BufferedReader(connection)
                while let line = try reader.readLine(timeout: 10) {
                    var reply = Array("echo \(line) from \(connection.request.target)\n".utf8)
                    try reply.withUnsafeBytes { try connection.sendAll($0, timeout: 10) }
                    reply.removeAll()
                    if line == "bye" { return }
                }
            }
            return r
        }
        try withServer(handler: handler) { port in
            let upgrade = "GET /switch HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
            let reply = try exchange(port, upgrade + "early\nbye\n")
            XCTAssertTrue(reply.hasPrefix("HTTP/1.1 101 "), reply)
            XCTAssertTrue(reply.hasSuffix("\r\n\r\necho early from /switch\necho bye from /switch\n"), reply)
            let refused = try exchange(port, upgrade.replacingOccurrences(of: "/switch", with: "/other") + "GET / HTTP/1.1\r\n\r\n")
            XCTAssertTrue(refused.hasPrefix("HTTP/1.1 200 "), refused)
            XCTAssertTrue(refused.contains("Connection: close"), refused)
            XCTAssertTrue(refused.hasSuffix("no switch"), "the bytes after an upgrade request are not read as HTTP: \(refused)")
        }
    }

    func testHeaderLimitsGive431AndBodyLimitsGive413() throws {
        var options = HTTPServer.Options()
        options.limits = HTTPLimits(maxHeaderBytes: 256, maxHeaderCount: 5, maxBodyBytes: 10)
        try withServer(options, handler: hello) { port in
            let big = try exchange(port, "GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "a", count: 400))\r\n\r\n")
            XCTAssertTrue(big.hasPrefix("HTTP/1.1 431 "), big)
            let many = try exchange(port, "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<6).map { "H\($0): v\r\n" }.joined() + "\r\n")
            XCTAssertTrue(many.hasPrefix("HTTP/1.1 431 "), many)
            let body = try exchange(port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n01234567890")
            XCTAssertTrue(body.hasPrefix("HTTP/1.1 413 "), body)
        }
    }

    func testAClientTooSlowWithItsHeadersGets408() throws {
        var options = HTTPServer.Options()
        options.headerTimeout = 0.1
        try withServer(options, handler: hello) { port in
            let reply = try exchange(port, "GET / HTTP/1.1\r\nHost: a\r\n")   // never finishes
            XCTAssertTrue(reply.hasPrefix("HTTP/1.1 408 "), reply)
        }
    }

    /// Runs `body` with unhandled greenlet errors collected; returns them.
    private func collectingUnhandledErrors(_ body: () throws -> Void) throws -> [String] {
        let errors = Locked<[String]>([])
        UnhandledErrorReporter.setHandler { name, error in errors.withLock { $0.append("\(name): \(error)") } }
        defer { UnhandledErrorReporter.setHandler(nil) }
        try body()
        return errors.withLock { $0 }
    }

    /// Waits (at most 5 s) until `condition` holds.
    private func waitUntil(_ what: String, _ condition: () -> Bool) throws {
        let deadline = Hub.current.nowUpdated() + 5
        while !condition() {
            guard Hub.current.nowUpdated() < deadline else { throw TestError("timed out waiting until \(what)") }
            try Green.sleep(0.001)
        }
    }

    func testAnIdleKeepAliveConnectionIsListedAndMayBeClosedQuietly() throws {
        let idle = IdleConnections.current
        let errors = try collectingUnhandledErrors {
            let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), handler: hello)
            server.start()
            defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
            let before = idle.count
            let s = try Socket.connect(host: "127.0.0.1", port: server.address.port, timeout: 5)
            defer { s.close() }
            try s.sendAll("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
            let reply = String(decoding: try s.recv(timeout: 5), as: UTF8.self)
            XCTAssertTrue(reply.hasSuffix("hello GET /a 0"), reply)
            // Waiting for its next request, the connection is listed.
            try waitUntil("the connection is idle") { idle.count == before + 1 }
            XCTAssertEqual(idle.closeLongestIdle(1), 1)
            XCTAssertEqual(try s.recv(timeout: 5), [], "the client sees the end of the stream")
            try waitUntil("its handler ended") { server.connectionCount == 0 }
            XCTAssertEqual(idle.count, before)
        }
        XCTAssertEqual(errors, [], "a connection closed while idle is not a failed handler")
    }

    func testAClientResettingMidResponseEndsOnlyItsConnectionQuietly() throws {
        let big = [UInt8](repeating: 7, count: 4 << 20)
        let errors = try collectingUnhandledErrors {
            let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { request in
                request.path == "/big" ? HTTPResponse(body: big) : HTTPResponse(text: "fine")
            }
            server.start()
            defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
            for _ in 0..<3 {
                let s = try Socket.connect(host: "127.0.0.1", port: server.address.port, timeout: 5)
                try s.sendAll("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
                XCTAssertFalse(try s.recv(timeout: 5).isEmpty)
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                s.close()   // a reset, with most of the 4 MiB unsent
            }
            try waitUntil("the handlers ended") { server.connectionCount == 0 }
            let reply = try exchange(server.address.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            XCTAssertTrue(reply.hasSuffix("fine"), reply)
        }
        XCTAssertEqual(errors, [], "a peer's reset is not the server's error")
    }

    func testAConnectionThatSendsNothingIsNotHandedOver() throws {
        // TCP_DEFER_ACCEPT: the kernel keeps a silent connection until its
        // first bytes come, so it takes no descriptor or greenlet here.
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), handler: hello)
        server.start()
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        let silent = try Socket.connect(host: "127.0.0.1", port: server.address.port, timeout: 5)
        defer { silent.close() }
        // A client that came after it is answered; the silent one, first
        // in the accept queue, was not accepted.
        let reply = try exchange(server.address.port, "GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(reply.hasSuffix("hello GET /after 0"), reply)
        try waitUntil("the answered connection's handler ended") { server.connectionCount == 0 }
        // Once it speaks, it is served.
        try silent.sendAll("GET /late HTTP/1.1\r\nHost: a\r\n\r\n")
        let late = String(decoding: try silent.recv(timeout: 5), as: UTF8.self)
        XCTAssertTrue(late.hasSuffix("hello GET /late 0"), late)
    }

    func testAHandlerErrorGives500() throws {
        let reply = try helloServersReply(to: "GET /boom HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 500 "), reply)
    }

    func testHeadGetsHeadersWithoutABody() throws {
        let reply = try helloServersReply(to: "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200 "), reply)
        XCTAssertTrue(reply.hasSuffix("\r\n\r\n"), reply)
    }

    func testAStreamedResponseIsSentChunked() throws {
        let streaming: HTTPServer.Handler = { _ in
            var r = HTTPResponse()
            r.bodyWriter = { w in
                try w.write("first,")
                try Green.sleep(0)
                try w.write("second")
            }
            return r
        }
        try withServer(handler: streaming) { port in
            let reply = try exchange(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            XCTAssertTrue(reply.contains("Transfer-Encoding: chunked\r\n"), reply)
            XCTAssertTrue(reply.hasSuffix("\r\n\r\n6\r\nfirst,\r\n6\r\nsecond\r\n0\r\n\r\n"), reply)
        }
    }

    func testGracefulStopLetsARequestInProgressFinish() throws {
        let release = Event()
        let slow: HTTPServer.Handler = { _ in
            try release.wait()
            return HTTPResponse(text: "finished")
        }
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), handler: slow)
        server.start()
        let client = spawn { () throws -> String in
            try self.exchange(server.address.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        }
        for _ in 0..<100 { try Green.sleep(0.001) }
        let stopper = spawn { try server.stop(timeout: 10) }
        try Green.sleep(0)
        release.set()
        try withTimeout(10) { try stopper.join() }
        XCTAssertTrue(try withTimeout(10) { try client.get() }.hasSuffix("finished"))
    }

    /// A handler still running when a stop's grace period ends is killed:
    /// its connection closes without an answer (no 500 for the kill) and
    /// the stop returns, though the client keeps its end open.
    func testAStopKillsAHandlerThatOutlivesTheGracePeriodWithoutAnswering() throws {
        let entered = Event(), never = Event()
        let stuck: HTTPServer.Handler = { _ in
            entered.set()
            try never.wait()
            return HTTPResponse(text: "unreachable")
        }
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), handler: stuck)
        server.start()
        let s = try Socket.connect(host: "127.0.0.1", port: server.address.port, timeout: 5)
        defer { s.close() }
        try s.sendAll("GET / HTTP/1.1\r\nHost: a\r\n\r\n")   // keep-alive: the client never closes first
        try withTimeout(10) { try entered.wait() }
        try withTimeout(10) { try server.stop(timeout: 0.05) }
        let reply = try withTimeout(10) { try s.recv(timeout: 5) }
        XCTAssertEqual(String(decoding: reply, as: UTF8.self), "", "the killed handler's connection ends unanswered")
    }
}
