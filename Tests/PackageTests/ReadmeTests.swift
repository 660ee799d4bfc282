import Foundation
import Green
import GreenCompare
import GreenCompareWorkloads
import GreenHTTP
import XCTest
import GreenTestSupport

/// The README's tour, verbatim apart from the assertions: it must compile
/// and do what the README says.
final class ReadmeTests: GreenTestCase {
    func testTheCoreTourRuns() throws {
        // Spawn, join, get. A greenlet starts when the spawner next blocks.
        let g = spawn { () throws -> Int in try Green.sleep(0.1); return 42 }
        print(try g.get())                      // 42; rethrows the body's error

        // Kill: the error is thrown at the greenlet's blocking point, so `defer`
        // and `catch` run. A greenlet killed before it starts never runs.
        let worker = spawn { defer { print("cleaned up") }; try Green.sleep(60) }
        try Green.sleep(0)
        try worker.kill()                       // prints "cleaned up"

        // Timeouts, nested ones included: each knows its own expiry.
        let reply = try withTimeout(2.0, otherwise: { "too slow" }) {
            try Green.sleep(5); return "done"
        }

        // Structured concurrency: nothing outlives the scope; the first child
        // error cancels the siblings and is rethrown here.
        try withScope { scope in
            scope.spawn { try Green.sleep(0.1) }
            scope.spawn { try Green.sleep(0.2) }
        }

        // Wait for whichever finishes first, or for each as it finishes.
        var done = completions(of: [g, worker])
        while let finished = try done.next() { print(finished.name) }

        // Critical sections that must not stop halfway.
        try shielded { try Green.sleep(0.01) }

        // Per-greenlet values.
        let requestID = GreenletLocal<Int>(default: 0)

        XCTAssertEqual(try g.get(), 42)
        XCTAssertTrue(worker.error is GreenletExit)
        XCTAssertEqual(reply, "too slow")
        XCTAssertEqual(done.count, 0)
        XCTAssertEqual(requestID.value, 0)
    }

    func testTheSyncTourRuns() throws {
        // A bounded queue; close() instead of sentinels.
        let jobs = Queue<Int>(maxSize: 100)
        let producer = spawn { for i in 0..<1_000 { try jobs.put(i) }; jobs.close() }
        let consumers = (0..<4).map { _ in spawn { for job in jobs { _ = job * 2 } } }
        try joinAll([producer] + consumers)

        // At most 20 at once; results in order; the first error cancels the rest.
        let squares = try Pool(size: 20).map(1...100) { n in try Green.sleep(0.01); return n * n }

        // Locks, semaphores, conditions, events.
        let lock = Lock()
        try lock.withLock { /* a read-modify-write that spans a blocking call */ }
        let slots = Semaphore(value: 10)
        try slots.withPermit { try Green.sleep(0.01) }

        // A result set from another OS thread wakes the waiting greenlet.
        let answer = AsyncResult<Int>()
        Thread.detachNewThread { answer.set(42) }   // Foundation's Thread
        print(try answer.get(timeout: 5))

        XCTAssertTrue(jobs.isClosed && jobs.isEmpty)
        XCTAssertEqual(squares, (1...100).map { $0 * $0 })
        XCTAssertFalse(lock.isLocked)
        XCTAssertEqual(slots.value, 10)
        XCTAssertEqual(answer.value, 42)
    }
}

extension ReadmeTests {
    func testTheNetworkingTourRuns() throws {
        @Sendable func expensiveComputation() -> Int { (1...1000).reduce(0, +) }
        @Sendable func someAsyncFunction() async throws -> Int { 7 }

        // A TCP echo server: a greenlet per connection.
        let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { conn, peer in
            while case let data = try conn.recv(), !data.isEmpty { try conn.sendAll(data) }
        }
        server.start()

        // A client: names resolve on a thread pool, never blocking the hub.
        let s = try Socket.connect(host: "localhost", port: server.address.port, timeout: 5)
        try s.sendAll("hello")
        print(try s.recv(timeout: 5))
        s.close()
        try server.stop(timeout: 5)              // graceful: in-flight handlers finish

        // Blocking work on OS threads; child processes; signals; async code.
        let n = try ThreadPool.shared.run { expensiveComputation() }
        let (out, _) = try Subprocess(["cat"]).communicate(input: Array("data".utf8))
        let onHup = SignalHandler(SIGHUP) { print("reloading") }
        let value = try awaitAsync { try await someAsyncFunction() }

        onHup.cancel()
        XCTAssertEqual(n, 500_500)
        XCTAssertEqual(out, Array("data".utf8))
        XCTAssertEqual(value, 7)
    }
}

extension ReadmeTests {
    func testTheHTTPTourRuns() throws {
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { request in
            HTTPResponse(text: "Hello, World!")
        }
        server.start()
        let client = HTTPClient()                    // keep-alive pool, redirects, gzip
        print(try client.get("http://127.0.0.1:\(server.address.port)/").text)

        XCTAssertEqual(try client.get("http://127.0.0.1:\(server.address.port)/").text, "Hello, World!")
        client.close()
        try server.stop(timeout: 5)
    }
}

extension ReadmeTests {
    /// "Which model when": the snippet, with the worker program of the
    /// processes model being green-compare (the test runner serves no
    /// jobs), and its square job in place of the snippet's.
    func testTheStreamingBodiesSnippetRuns() throws {
        try withTemporaryDirectory { dir in
            let address = try SocketAddress(ip: "127.0.0.1", port: 0)
            // A server handler that reads the request body as it comes.
            let server = try HTTPServer(on: address) { request, body in
                var length = 0
                for piece in body { length += piece.count }
                if request.method == "GET" { return HTTPResponse(status: 200, body: [UInt8](repeating: 1, count: 300_000)) }
                return HTTPResponse(text: "\(length) bytes\n")
            }
            server.start()
            defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
            let client = HTTPClient()
            defer { client.close() }
            let url = "http://127.0.0.1:\(server.address.port)/"
            try withTimeout(20) {
                var file: [UInt8] = []
                // Download: the body as it arrives.
                let download = try client.open(url: url)
                while let piece = try download.next() { file += piece }
                XCTAssertEqual(file.count, 300_000)

                // Upload: from a producer (chunked), or a file.
                try Data(file).write(to: URL(fileURLWithPath: dir + "/big.iso"))
                XCTAssertEqual(try client.send(method: "PUT", url: url, body: .file(dir + "/big.iso")).text, "300000 bytes\n")
                var pieces = [[UInt8](repeating: 2, count: 5), [3]]
                let source = { pieces.isEmpty ? nil : pieces.removeFirst() }
                XCTAssertEqual(try client.send(method: "POST", url: url, body: .stream(length: nil) { source() }).text, "6 bytes\n")
            }
        }
    }

    func testTheWebSocketSnippetRuns() throws {
        let address = try SocketAddress(ip: "127.0.0.1", port: 0)
        // A server endpoint: the HTTP server answers the upgrade, the handler
        // then owns the WebSocket on the connection's greenlet.
        let server = try HTTPServer(on: address) { request in
            WebSocket.upgradeResponse(for: request) { ws in
                for message in ws { try ws.send(message) }      // echo until the peer closes
            }
        }
        server.start()
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        try withTimeout(10) {
            // A client, ws:// or wss:// (the HTTP client's TLS options apply).
            let ws = try HTTPClient().webSocket("ws://127.0.0.1:\(server.address.port)/")
            try ws.send(text: "hello")
            let echoed = try ws.receive()
            print(echoed as Any)
            try ws.close(code: .normal)
            guard case .text("hello")? = echoed else { return XCTFail("\(String(describing: echoed))") }
        }
    }

    func testTheWhichModelWhenSnippetRuns() throws {
        let square = Job<Int, Int>("square") { n, _ in n * n }   // named; Codable in and out
        ProcessWorker.serveIfWorker(jobs: [square.erased])      // returns at once here

        for kind in ModelKind.allCases {
            let worker = try XCTUnwrap((builtExecutable(named: "green-compare") ?? builtExecutable(named: "GreenCompareTool")))
            let pool = try Model(kind, workerExecutable: worker).pool(size: 2)
            let job = kind == .processes ? ConformanceJobs.square : square
            let squares = try pool.map(job, Array(1...10))
            print(kind, squares)
            XCTAssertEqual(squares, (1...10).map { $0 * $0 })
            pool.close()
        }
    }
}
