import Foundation
import Glibc
import Green
import GreenHTTP
import XCTest
import GreenTestSupport

/// Our WebSocket against PyPI `websockets` (pinned by `make test-venv`),
/// an independent implementation, in both roles; and 10,000 connections
/// on one hub, loaded by the ws-echo example in a child process.
final class WebSocketInteropTests: GreenTestCase {
    private static let scripts = TestVenv.root.appendingPathComponent("Tests/interop")

    func testPythonWebsocketsClientTalksToOurServer() throws {
        let seen = Locked<[String]>([])
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { request in
            WebSocket.upgradeResponse(for: request) { ws in
                while let message = try ws.receive(timeout: 20) {
                    switch message {
                    case .text("server-fragments"): try ws.send(text: "fragmented by swift ✓", fragmentSize: 4)
                    case .text("server-ping"):
                        try ws.ping([1, 2, 3])
                        try ws.send(text: "pinged")
                    default: try ws.send(message)
                    }
                }
                seen.withLock {
                    $0.append("close \(ws.closeCode?.rawValue ?? 0) \(ws.closeReason); pings \(ws.pingsReceived), pongs \(ws.pongsReceived) \(ws.lastPong)")
                }
            }
        }
        server.start()
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        let run = try TestVenv.run([Self.scripts.appendingPathComponent("ws_client.py").path,
                                    "ws://127.0.0.1:\(server.address.port)/"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let out = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], run.stdout)
        XCTAssertEqual(out["text"] as? String, "hello ✓")
        XCTAssertEqual(out["binary"] as? [Int], [0, 255, 16])
        XCTAssertEqual(out["fragmented"] as? String, "fragmented text ✓")
        XCTAssertEqual(out["fragmented_binary"] as? [Int], [97, 98, 99, 100])
        XCTAssertEqual(out["pong"] as? Bool, true, "our server answered python's ping")
        XCTAssertEqual(out["server_fragments"] as? String, "fragmented by swift ✓")
        XCTAssertEqual(out["after_server_ping"] as? String, "pinged")
        XCTAssertEqual(out["big_length"] as? Int, 70000)
        XCTAssertEqual(out["close_code"] as? Int, 4001, "our server echoed python's close code")
        XCTAssertEqual(out["close_reason"] as? String, "")
        XCTAssertEqual(seen.withLock { $0 }, ["close 4001 client bye; pings 1, pongs 1 [1, 2, 3]"])
    }

    func testOurClientTalksToAPythonWebsocketsServer() throws {
        let python = TestVenv.root.appendingPathComponent(".venv-tests/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TestError("\(python) is missing: run `make test-venv`")
        }
        let child = try Subprocess([python, Self.scripts.appendingPathComponent("ws_server.py").path],
                                   stdin: .null, stdout: .pipe, stderr: .null)
        defer {
            child.kill(SIGKILL)
            _ = try? child.wait(timeout: 10)
        }
        let lines = BufferedReader(child.stdout!)
        let first = try XCTUnwrap(try lines.readLine(timeout: 20), "the python server printed nothing")
        let port = try XCTUnwrap(UInt16(first.split(separator: " ").last ?? ""), first)
        let url = "ws://127.0.0.1:\(port)/"

        let ws = try WebSocket.connect(url: url)
        try ws.send(text: "hello ✓")
        XCTAssertEqual(try ws.receive(timeout: 10), .text("hello ✓"))
        try ws.send(binary: Array(0..<200), fragmentSize: 64)    // four frames
        XCTAssertEqual(try ws.receive(timeout: 10), .binary(Array(0..<200)))
        try ws.send(text: "fragment-me")
        XCTAssertEqual(try ws.receive(timeout: 10), .text("fragmented reply ✓"))
        XCTAssertEqual(try ws.receive(timeout: 10), .binary([0, 1, 2]))
        try ws.send(text: "ping-me")
        XCTAssertEqual(try ws.receive(timeout: 10), .text("pong-ok"), "python got our automatic pong")
        XCTAssertEqual(ws.pingsReceived, 1)
        try ws.ping(Array("swift-ping".utf8))
        try ws.send(text: "after")
        XCTAssertEqual(try ws.receive(timeout: 10), .text("after"))
        XCTAssertEqual(ws.lastPong, Array("swift-ping".utf8))
        try ws.close(code: WebSocket.CloseCode(4003), reason: "client bye")
        XCTAssertEqual(ws.closeCode, WebSocket.CloseCode(4003), "python echoed our code")

        let second = try WebSocket.connect(url: url)
        try second.send(text: "close-me")
        XCTAssertNil(try second.receive(timeout: 10))
        XCTAssertEqual(second.closeCode, WebSocket.CloseCode(4002))
        XCTAssertEqual(second.closeReason, "server bye")

        var reports: [String] = []
        while reports.count < 2, let line = try lines.readLine(timeout: 20) { reports.append(line) }
        XCTAssertEqual(Set(reports), ["{\"close_code\": 4003, \"close_reason\": \"client bye\"}",
                                      // python reports the reason of the close frame it received: our answer echoes the code alone
                                      "{\"close_code\": 4002, \"close_reason\": \"\"}"])
    }

    /// The server (one hub) here; 10,000 clients in a child process, the
    /// ws-echo example (the process fd limit would not hold both ends).
    func testTenThousandConcurrentConnectionsOnOneHubEchoAMessageEach() throws {
        try AnalysisTool.skipUnderSanitizers("a load test (20,000 descriptors, two processes), not a memory check; the other WebSocket tests run")
        let wsEcho = try XCTUnwrap(Self.wsEcho, "ws-echo is not built next to the test bundle: swift build --product ws-echo")
        let connections = 10_000
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < rlim_t(connections + 1000) {
            throw XCTSkip("the fd limit (\(limit.rlim_cur)) is below \(connections + 1000)")
        }
        let closedNormally = Locked(0)
        let allClosed = Locked(Event())   // the handlers run on this thread's hub
        var options = HTTPServer.Options()
        options.stackMode = StackMode.compactAvailable ? .compact : .dedicated
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), options: options) { request in
            WebSocket.upgradeResponse(for: request) { ws in
                while let message = try ws.receive(timeout: 120) { try ws.send(message) }
                if ws.closeCode == .normal, closedNormally.withLock({ $0 += 1; return $0 }) == connections {
                    allClosed.withLock { $0 }.set()
                }
            }
        }
        server.start()
        defer { _ = try? withTimeout(30) { try server.stop(timeout: 5) } }
        let child = try Subprocess([wsEcho.path, "--connect", "ws://127.0.0.1:\(server.address.port)/",
                                    "--connections", "\(connections)", "--messages", "1", "--size", "32", "--json"],
                                   stdin: .null, stdout: .pipe, stderr: .pipe)
        let output: (stdout: [UInt8], stderr: [UInt8])
        do {
            output = try withTimeout(300) { try child.communicate() }
        } catch is TimeoutError {
            child.kill(SIGKILL)
            _ = try child.wait(timeout: 10)
            throw TestError("ws-echo with \(connections) connections did not end within 300 s")
        }
        let stdout = String(decoding: output.stdout, as: UTF8.self)
        XCTAssertEqual(child.status, .exited(0), String(decoding: output.stderr, as: UTF8.self))
        XCTAssertTrue(stdout.contains("\"messages\": \(connections),"), stdout)
        XCTAssertTrue(stdout.contains("\"failed_connections\": 0"), stdout)
        // Each handler notes its close just after answering it.
        _ = try allClosed.withLock { $0 }.wait(timeout: 30)
        XCTAssertEqual(closedNormally.withLock { $0 }, connections)
    }

    /// ws-echo, built into the same products directory as the tests.
    private static let wsEcho: URL? = {
        var directories: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        directories.append(Bundle.main.bundleURL)
        directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
        return directories.map { $0.appendingPathComponent("ws-echo") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()
}
