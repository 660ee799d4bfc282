import Glibc
@testable import Green
import Synchronization
import XCTest
import GreenTestSupport

/// A stream server on several hub threads.
final class ServerThreadsTests: GreenTestCase {
    func testTwoHubsServeOneAddressAndStop() throws {
        let served = Atomic<Int>(0)
        let servers = try ServerThreads.start(threads: 2, on: SocketAddress(ip: "127.0.0.1", port: 0)) { conn, _ in
            served.wrappingAdd(1, ordering: .relaxed)
            while true {
                let data = try conn.recv()
                if data.isEmpty { return }
                try conn.sendAll(data)
            }
        }
        let port = servers.address.port
        XCTAssertNotEqual(port, 0)
        let clients = (0..<100).map { i in
            spawn { () throws -> Bool in
                let s = try Socket.connect(host: "127.0.0.1", port: port, timeout: 5)
                defer { s.close() }
                try s.sendAll("\(i)")
                return try s.recv(timeout: 5) == Array("\(i)".utf8)
            }
        }
        try withTimeout(30) { try joinAll(clients, raiseError: true) }
        XCTAssertTrue(clients.allSatisfy { $0.value == true })
        XCTAssertEqual(served.load(ordering: .relaxed), 100)
        try withTimeout(30) { try servers.stop(timeout: 5) }
        XCTAssertThrowsError(try Socket.connect(host: "127.0.0.1", port: port, timeout: 5))
    }

    /// A thread that cannot start (the second of three here) leaves
    /// nothing behind: the first thread's server stopped and its thread
    /// ended, the third listener closed, the port refusing.
    func testAThreadThatCannotStartLeavesNothingServing() throws {
        var port: UInt16 = 0
        var started: [HubThread] = []
        XCTAssertThrowsError(try ServerThreads.start(
            threads: 3, on: SocketAddress(ip: "127.0.0.1", port: 0), maxConnections: nil, stackMode: .default,
            configureListener: { port = $0.localAddress!.port },
            startThread: { i in
                if i == 1 { throw GreenError.threadStartFailed }
                let thread = try HubThread.start(name: "test-server-\(i)")
                started.append(thread)
                return thread
            }, handler: { _, _ in })) { error in
            guard case GreenError.threadStartFailed = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(started.count, 1)
        XCTAssertTrue(try withTimeout(10) { try started[0].join(timeout: 10) }, "the started thread ended")
        XCTAssertThrowsError(try Socket.connect(host: "127.0.0.1", port: port, timeout: 5)) { error in
            XCTAssertEqual((error as? SocketError)?.errno, ECONNREFUSED, "\(error)")
        }
    }

    /// A thread's server whose accept loop fails (its listener shut
    /// down under it) is reported by join, as serveForever reports it on
    /// one hub, once every thread has stopped.
    func testJoinThrowsTheErrorThatEndedAThreadsServer() throws {
        var listeners: [Int32] = []
        let servers = try ServerThreads.start(threads: 2, on: SocketAddress(ip: "127.0.0.1", port: 0),
                                              configureListener: { listeners.append($0.fd) }) { _, _ in }
        for fd in listeners { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        XCTAssertThrowsError(try withTimeout(10) { try servers.join() }) { error in
            guard let e = error as? SocketError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(e)".contains("accept"), "\(e)")
        }
    }
}
