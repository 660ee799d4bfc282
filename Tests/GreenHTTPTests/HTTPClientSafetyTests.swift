import Foundation
import Green
import GreenHTTP
import XCTest
import GreenTestSupport

/// The HTTP client's rules that keep a caller safe: credentials stay with
/// their origin, a request that may have acted is never replayed, idle
/// pools do not pile up.
final class HTTPClientSafetyTests: GreenTestCase {
    /// A site whose handler sees every request; stopped when `body` ends.
    private func withServer(_ handle: @escaping (HTTPRequest) throws -> HTTPResponse,
                            _ body: (_ port: UInt16) throws -> Void) throws {
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), handler: handle)
        try whileServing(server, body)
    }

    private static let credentials: HTTPHeaders = [
        "Authorization": "Bearer secret", "Cookie": "session=secret", "Proxy-Authorization": "Basic c2VjcmV0",
        "X-Trace": "kept",
    ]

    func testCredentialsAreDroppedOnARedirectToAnotherOriginAndKeptOnTheSame() throws {
        var seenByA: [HTTPHeaders] = []
        var seenByB: [HTTPHeaders] = []
        var portA: UInt16 = 0
        try withServer({ r in
            seenByB.append(r.headers)
            // Back to the first origin: the credentials stay dropped.
            return r.path == "/back" ? HTTPResponse(status: 302, headers: ["Location": "http://127.0.0.1:\(portA)/end"])
                : HTTPResponse(text: "b")
        }) { portB in
            try withServer({ r in
                seenByA.append(r.headers)
                switch r.path {
                case "/same": return HTTPResponse(status: 302, headers: ["Location": "/end"])
                case "/away": return HTTPResponse(status: 307, headers: ["Location": "http://127.0.0.1:\(portB)/end"])
                case "/away-and-back": return HTTPResponse(status: 302, headers: ["Location": "http://127.0.0.1:\(portB)/back"])
                // Same port, another host name: another origin.
                case "/other-name": return HTTPResponse(status: 302, headers: ["Location": "http://localhost:\(portA)/end"])
                default: return HTTPResponse(text: "a")
                }
            }) { a in
                portA = a
                let client = HTTPClient()
                defer { client.close() }
                let base = "http://127.0.0.1:\(a)"

                XCTAssertEqual(try withTimeout(10) { try client.get(base + "/same", headers: Self.credentials) }.text, "a")
                XCTAssertEqual(seenByA.last?["Authorization"], "Bearer secret", "same origin: kept")
                XCTAssertEqual(seenByA.last?["Cookie"], "session=secret")

                XCTAssertEqual(try withTimeout(10) { try client.get(base + "/away", headers: Self.credentials) }.text, "b")
                let atB = try XCTUnwrap(seenByB.last)
                for name in ["Authorization", "Cookie", "Proxy-Authorization"] {
                    XCTAssertNil(atB[name], "\(name) reached another origin")
                }
                XCTAssertEqual(atB["X-Trace"], "kept", "other headers still go")

                seenByA.removeAll()
                XCTAssertEqual(try withTimeout(10) { try client.get(base + "/away-and-back", headers: Self.credentials) }.text, "a")
                XCTAssertEqual(seenByA.count, 2)
                XCTAssertNil(seenByA.last?["Authorization"], "dropped for the rest of the chain")

                XCTAssertEqual(try withTimeout(10) { try client.get(base + "/other-name", headers: Self.credentials) }.text, "a")
                XCTAssertNil(seenByA.last?["Cookie"], "another host name is another origin")
            }
        }
    }

    func testAPostTurnedIntoAGetLosesItsBodyAndItsBodysHeaders() throws {
        var last: HTTPRequest?
        try withServer({ r in
            last = r
            return r.path == "/form" ? HTTPResponse(status: 303, headers: ["Location": "/done"]) : HTTPResponse(text: "ok")
        }) { port in
            let client = HTTPClient()
            defer { client.close() }
            let r = try withTimeout(10) {
                try client.post("http://127.0.0.1:\(port)/form", body: Array("a=1".utf8), contentType: "application/x-www-form-urlencoded")
            }
            XCTAssertEqual(r.text, "ok")
            let done = try XCTUnwrap(last)
            XCTAssertEqual(done.method, "GET")
            XCTAssertEqual(done.body, [])
            XCTAssertNil(done.headers["Content-Type"])
        }
    }

    // MARK: - No replay of a request that may have acted

    /// A server that answers the first request of its first connection,
    /// then reads the next request and closes without an answer (a server
    /// that died while acting on it); later connections get answers.
    /// Returns the port and the requests it read ("METHOD /path body").
    private func withDyingServer(_ body: (_ port: UInt16, _ seen: @escaping () -> [String]) throws -> Void) throws {
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        var seen: [String] = []
        let serving = spawn(name: "dying server") { () throws -> Void in
            var first = true
            while true {
                let (c, _) = try listener.accept()
                defer { c.close() }
                var pending: [UInt8] = []
                var answered = 0
                while let request = try Self.readRequest(c, &pending) {
                    seen.append(request)
                    if first && answered == 1 { break }
                    try c.sendAll(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))
                    answered += 1
                }
                first = false
            }
        }
        defer {
            _ = try? serving.kill(timeout: 5)
            listener.close()
        }
        try body(listener.localAddress!.port) { seen }
    }

    /// One request off `c` as "METHOD /target body" (nil at the end).
    private static func readRequest(_ c: Socket, _ pending: inout [UInt8]) throws -> String? {
        let end = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        for _ in 0..<1000 {
            if let r = pending.indices.dropLast(3).first(where: { pending[$0..<($0 + 4)].elementsEqual(end) }) {
                headEnd = r + 4
                break
            }
            let more = try c.recv(timeout: 10)
            if more.isEmpty { return nil }
            pending += more
        }
        guard let headEnd else { return nil }
        let head = String(decoding: pending[..<headEnd], as: UTF8.self)
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        while pending.count < headEnd + length {
            let more = try c.recv(timeout: 10)
            if more.isEmpty { return nil }
            pending += more
        }
        let line = head.split(separator: "\r\n").first.map(String.init) ?? ""
        let text = line.split(separator: " ").prefix(2).joined(separator: " ") + " "
            + String(decoding: pending[headEnd..<(headEnd + length)], as: UTF8.self)
        pending.removeFirst(headEnd + length)
        return text
    }

    /// Runs `body` with a client whose connection to a dying server (its
    /// base URL given) was kept alive after a first GET /warm, and the
    /// requests the server read; closes the client afterwards.
    private func withAWarmConnectionToADyingServer(
        _ body: (_ client: HTTPClient, _ url: String, _ seen: () -> [String]) throws -> Void
    ) throws {
        try withDyingServer { port, seen in
            let client = HTTPClient()
            defer { client.close() }
            let url = "http://127.0.0.1:\(port)/"
            XCTAssertEqual(try withTimeout(10) { try client.get(url + "warm") }.text, "ok")
            try body(client, url, seen)
        }
    }

    func testAPostIsNotSentAgainWhenAKeptAliveConnectionDies() throws {
        try withAWarmConnectionToADyingServer { client, url, seen in
            XCTAssertThrowsError(try withTimeout(10) { try client.post(url + "pay", body: Array("1 EUR".utf8)) }) { error in
                guard let e = error as? HTTPClientError, case .closedBeforeResponse = e.kind else { return XCTFail("\(error)") }
            }
            XCTAssertEqual(seen(), ["GET /warm ", "POST /pay 1 EUR"], "the POST reached the server once")
        }
    }

    func testAGetIsSentAgainOnANewConnectionWhenAKeptAliveConnectionDies() throws {
        try withAWarmConnectionToADyingServer { client, url, seen in
            XCTAssertEqual(try withTimeout(10) { try client.get(url + "page") }.text, "ok")
            XCTAssertEqual(seen(), ["GET /warm ", "GET /page ", "GET /page "])
        }
    }

    func testAPostWithAnIdempotencyKeyIsSentAgain() throws {
        try withAWarmConnectionToADyingServer { client, url, seen in
            let r = try withTimeout(10) {
                try client.post(url + "pay", body: Array("1 EUR".utf8), headers: ["Idempotency-Key": "8e03978e"])
            }
            XCTAssertEqual(r.text, "ok")
            XCTAssertEqual(seen(), ["GET /warm ", "POST /pay 1 EUR", "POST /pay 1 EUR"])
        }
    }

    // MARK: - Pools

    func testIdleConnectionsAreClosedAfterTheirTimeout() throws {
        var peers: [UInt16] = []
        try withServer({ r in
            peers.append(r.peer?.port ?? 0)
            return HTTPResponse(text: "x")
        }) { port in
            var options = HTTPClient.Options()
            options.idleConnectionTimeout = 0
            let client = HTTPClient(options: options)
            defer { client.close() }
            for _ in 0..<3 { _ = try withTimeout(10) { try client.get("http://127.0.0.1:\(port)/") } }
            XCTAssertEqual(Set(peers).count, 3, "a connection idle past the timeout was reused")
            client.evictIdle()
            XCTAssertEqual(client.hostCount, 0, "a pool with nothing left is dropped")

            var keeping = HTTPClient.Options()
            keeping.idleConnectionTimeout = 3600
            let other = HTTPClient(options: keeping)
            defer { other.close() }
            peers.removeAll()
            for _ in 0..<3 { _ = try withTimeout(10) { try other.get("http://127.0.0.1:\(port)/") } }
            other.evictIdle()
            XCTAssertEqual(Set(peers).count, 1)
            XCTAssertEqual(other.hostCount, 1)
        }
    }

    func testPoolsAreKeptForAtMostMaxHostsLeastRecentlyUsedFirst() throws {
        var peers: [String: [UInt16]] = [:]
        let handler = { (name: String) in
            { (r: HTTPRequest) throws -> HTTPResponse in
                peers[name, default: []].append(r.peer?.port ?? 0)
                return HTTPResponse(text: name)
            }
        }
        try withServer(handler("a")) { a in
            try withServer(handler("b")) { b in
                try withServer(handler("c")) { c in
                    var options = HTTPClient.Options()
                    options.maxHosts = 2
                    let client = HTTPClient(options: options)
                    defer { client.close() }
                    func get(_ port: UInt16) throws -> String {
                        try withTimeout(10) { try client.get("http://127.0.0.1:\(port)/") }.text
                    }
                    XCTAssertEqual(try get(a), "a")
                    XCTAssertEqual(try get(b), "b")
                    XCTAssertEqual(try get(a), "a")
                    XCTAssertEqual(client.hostCount, 2)
                    XCTAssertEqual(try get(c), "c")
                    XCTAssertEqual(client.hostCount, 2, "a third host evicts one")
                    // b was used least recently: its pool went, a's stayed.
                    XCTAssertEqual(try get(a), "a")
                    XCTAssertEqual(Set(peers["a"]!).count, 1, "a's connection was kept")
                    XCTAssertEqual(try get(b), "b")
                    XCTAssertEqual(Set(peers["b"]!).count, 2, "b's pool was evicted and its connection closed")
                }
            }
        }
    }
}
