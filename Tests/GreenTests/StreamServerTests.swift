import Foundation
import Glibc
import Green
import XCTest
import GreenTestSupport

final class StreamServerTests: GreenTestCase {
    private func echo(_ conn: Socket, _ peer: SocketAddress) throws {
        while true {
            let data = try conn.recv()
            if data.isEmpty { return }
            try conn.sendAll(data)
        }
    }

    func testAServerEchoesForManyClientsAndStops() throws {
        let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0), handler: echo)
        server.start()
        let port = server.address.port
        let clients = (0..<200).map { i in
            spawn { () throws -> Bool in
                let s = try Socket.connect(host: "127.0.0.1", port: port)
                defer { s.close() }
                try s.sendAll("\(i)")
                return try s.recv() == Array("\(i)".utf8)
            }
        }
        try withTimeout(30) { try joinAll(clients, raiseError: true) }
        XCTAssertTrue(clients.allSatisfy { $0.value == true })
        XCTAssertTrue(try withTimeout(5) { try server.stop(timeout: 5) })
        XCTAssertFalse(server.isServing)
    }

    func testGracefulStopLetsConnectionsInProgressFinish() throws {
        let release = Event()
        var finished = 0
        let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { conn, _ in
            try release.wait()
            try conn.sendAll("done")
            finished += 1
        }
        server.start()
        let clients = spawnClientsReceivingTheirFirstBytes(3, from: server.address.port)
        try waitUntil("three handlers running") { server.handlers.count >= 3 }
        let stopper = spawn { try server.stop(timeout: 10) }
        try Green.sleep(0)
        // Stopped accepting at once...
        XCTAssertThrowsError(try Socket.connect(host: "127.0.0.1", port: server.address.port, timeout: 5))
        // ...and the three in progress finish normally.
        release.set()
        XCTAssertEqual(try withTimeout(10) { try stopper.get() }, true)
        XCTAssertEqual(finished, 3)
        for c in clients { XCTAssertEqual(try withTimeout(5) { try c.get() }, Array("done".utf8)) }
    }

    func testStopKillsHandlersThatOutliveItsTimeout() throws {
        var cleanedUp = false
        let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { _, _ in
            defer { cleanedUp = true }
            try Green.sleep(60)
        }
        server.start()
        let client = try Socket.connect(host: "127.0.0.1", port: server.address.port)
        defer { client.close() }
        try waitUntil("a handler running") { server.handlers.count >= 1 }
        XCTAssertEqual(try withTimeout(10) { try server.stop(timeout: 0.05) }, false)
        XCTAssertTrue(cleanedUp)
        XCTAssertEqual(server.handlers.count, 0)
    }

    func testMaxConnectionsCapsTheHandlersRunningAtOnce() throws {
        var running = 0, most = 0
        let release = Event()
        let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0), maxConnections: 2) { conn, _ in
            running += 1
            most = max(most, running)
            defer { running -= 1 }
            try release.wait()
            try conn.sendAll("ok")
        }
        server.start()
        let clients = spawnClientsReceivingTheirFirstBytes(6, from: server.address.port)
        try waitUntil("two handlers running") { running >= 2 }
        for _ in 0..<20 { try Green.sleep(0) }
        XCTAssertEqual(running, 2)
        release.set()
        try withTimeout(10) { try joinAll(clients, raiseError: true) }
        XCTAssertEqual(most, 2)
        try withTimeout(5) { try server.stop(timeout: 5) }
    }

    func testAServerOutOfFileDescriptorsBacksOffAndRecovers() throws {
        let outcome = try Probe.run("emfile-server", limit: 60)
        XCTAssertEqual(outcome.reason, .exit, outcome.stderr)
        XCTAssertEqual(outcome.status, 0, "stdout: \(outcome.stdout)\nstderr: \(outcome.stderr)")
        XCTAssertTrue(outcome.stdout.contains("recovered"), outcome.stdout)
        let exhaustions = outcome.stdout.split(separator: "\n")
            .first { $0.hasPrefix("exhaustions ") }.flatMap { Int($0.dropFirst("exhaustions ".count)) } ?? 0
        XCTAssertGreaterThan(exhaustions, 0, outcome.stdout)
    }

    func testAServerOutOfFileDescriptorsClosesItsLongestIdleConnections() throws {
        let outcome = try Probe.run("emfile-sheds-idle", limit: 60)
        XCTAssertEqual(outcome.reason, .exit, outcome.stderr)
        XCTAssertEqual(outcome.status, 0, "stdout: \(outcome.stdout)\nstderr: \(outcome.stderr)")
        XCTAssertTrue(outcome.stdout.contains("served 80 of 80;"), outcome.stdout)
        XCTAssertTrue(outcome.stdout.contains("first closed true; last answered true"), outcome.stdout)
        XCTAssertEqual(outcome.stderr, "", "a connection closed while idle is not a failed handler")
        let closed = outcome.stdout.split(separator: ";")
            .first { $0.contains("idle closed ") }.flatMap { Int($0.split(separator: " ").last!) } ?? 0
        XCTAssertGreaterThan(closed, 0, outcome.stdout)
    }
}

/// `count` greenlets, each connecting to `port` and returning the first
/// bytes it receives there.
private func spawnClientsReceivingTheirFirstBytes(_ count: Int, from port: UInt16) -> [Greenlet<[UInt8]>] {
    (0..<count).map { _ in
        spawn { () throws -> [UInt8] in
            let s = try Socket.connect(host: "127.0.0.1", port: port)
            defer { s.close() }
            return try s.recv()
        }
    }
}
