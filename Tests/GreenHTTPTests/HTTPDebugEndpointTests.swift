import Foundation
import Green
@testable import GreenHTTP
import XCTest
import GreenTestSupport

/// `HTTPServer.Options.debugEndpoints`: /debug/greenlets.
final class HTTPDebugEndpointTests: GreenTestCase {
    private let hello: HTTPServer.Handler = { request in HTTPResponse(text: "handler saw \(request.target)") }

    private func withDebugServer(_ on: Bool = true, _ body: (UInt16) throws -> Void) throws {
        var options = HTTPServer.Options()
        options.debugEndpoints = on
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), options: options, handler: hello)
        try whileServing(server, body)
    }

    /// A named greenlet parked in a function of this file while `body` runs.
    @inline(never) private static func markedWait(_ e: Event) throws { try e.wait() }

    private func withAMarkedGreenlet(_ body: () throws -> Void) throws {
        let release = Event()
        let marked = spawn(name: "debug-marker") { try Self.markedWait(release) }
        defer { release.set(); _ = try? marked.join(timeout: 5) }
        try letOthersRun()
        try body()
    }

    /// The reply to one request, read to the end (a full dump looks up
    /// the source line of every frame: seconds in a sanitized debug build).
    private func get(_ port: UInt16, _ target: String, method: String = "GET") throws -> (head: String, body: String) {
        let s = try Socket.connect(host: "127.0.0.1", port: port, timeout: 5)
        defer { s.close() }
        try s.sendAll("\(method) \(target) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let bytes = try withTimeout(120) { try readToTheEnd(bufferSize: 16_384) { try s.recv(into: $0, timeout: 120) } }
        let reply = String(decoding: bytes, as: UTF8.self)
        let parts = reply.components(separatedBy: "\r\n\r\n")
        return (parts[0], parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    func testOffByDefaultTheHandlerSeesThePath() throws {
        try withDebugServer(false) { port in
            XCTAssertEqual(try get(port, "/debug/greenlets").body, "handler saw /debug/greenlets")
        }
    }

    func testTheGroupedDumpAsTextNamesTheParkedGreenletAndItsFunction() throws {
        try withDebugServer { port in
            try withAMarkedGreenlet {
                let (head, body) = try get(port, "/debug/greenlets")
                XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 "), head)
                XCTAssertTrue(head.contains("Content-Type: text/plain"), head)
                XCTAssertTrue(body.contains("parked on Event.wait"), body)
                XCTAssertTrue(body.contains(": debug-marker"), body)
                XCTAssertTrue(body.contains("markedWait") && body.contains("HTTPDebugEndpointTests.swift:"), body)
                // The handler did not see it; other paths still reach it.
                XCTAssertEqual(try get(port, "/other").body, "handler saw /other")
            }
        }
    }

    func testJSONAndTheFullListOnRequest() throws {
        try withDebugServer { port in
            try withAMarkedGreenlet {
                let (head, body) = try get(port, "/debug/greenlets?format=json&full=1")
                XCTAssertTrue(head.contains("Content-Type: application/json"), head)
                let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
                let list = try XCTUnwrap(json["list"] as? [[String: Any]])
                let marker = try XCTUnwrap(list.first { $0["name"] as? String == "debug-marker" })
                XCTAssertEqual(marker["state"] as? String, "parked")
                XCTAssertEqual(marker["waiting_on"] as? String, "Event.wait")
                let full = try get(port, "/debug/greenlets?full=1").body
                XCTAssertTrue(full.contains("debug-marker: parked on Event.wait"), full)
            }
        }
    }

    func testOnlyGETAndOnlyLoopbackClients() throws {
        try withDebugServer { port in
            let (head, _) = try get(port, "/debug/greenlets", method: "POST")
            XCTAssertTrue(head.hasPrefix("HTTP/1.1 405 "), head)
            XCTAssertTrue(head.contains("Allow: GET, HEAD"), head)
        }
        // A client on another address (tests speak over loopback only: the
        // decision itself, with the peer such a connection would have).
        var options = HTTPServer.Options()
        options.debugEndpoints = true
        var request = HTTPRequest(method: "GET", target: "/debug/greenlets")
        request.peer = try SocketAddress(ip: "192.0.2.7", port: 40_000)
        XCTAssertEqual(try HTTPDebugEndpoints.response(to: request, options: options)?.status, 403)
        options.debugEndpointsFromAnyAddress = true
        XCTAssertEqual(try HTTPDebugEndpoints.response(to: request, options: options)?.status, 200)
        request.peer = try SocketAddress(ip: "::ffff:127.0.0.2", port: 1)
        options.debugEndpointsFromAnyAddress = false
        XCTAssertEqual(try HTTPDebugEndpoints.response(to: request, options: options)?.status, 200)
    }
}
