import Foundation
import Glibc
import Green
import XCTest
import GreenTestSupport

/// Cooperative sockets on real loopback sockets.
final class SocketTests: GreenTestCase {
    /// A listener on an ephemeral loopback port.
    private func listener(_ ip: String = "127.0.0.1", backlog: Int32 = 1024) throws -> Socket {
        try Socket.listen(on: SocketAddress(ip: ip, port: 0), backlog: backlog)
    }

    /// Echoes every connection's bytes back until it closes.
    private func echoServer(_ server: Socket) -> Greenlet<Void> {
        spawn(name: "echo-accept") {
            let handlers = Group()
            defer { try? handlers.kill() }
            while true {
                let (client, _) = try server.accept()
                try handlers.spawn {
                    defer { client.close() }
                    while true {
                        let data = try client.recv(maxBytes: 4096)
                        if data.isEmpty { return }
                        try client.sendAll(data)
                    }
                }
            }
        }
    }

    private func openFDs() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }

    func testAClientAndServerEchoOverIPv4() throws {
        let server = try listener()
        let accepting = echoServer(server)
        defer { try? accepting.kill(); server.close() }
        let client = try Socket.connect(host: "127.0.0.1", port: server.localAddress!.port, timeout: 5)
        defer { client.close() }
        try withTimeout(5) {
            try client.sendAll("hello, green")
            var got: [UInt8] = []
            while got.count < 12 { got += try client.recv() }
            XCTAssertEqual(String(decoding: got, as: UTF8.self), "hello, green")
        }
    }

    func testAClientAndServerEchoOverIPv6() throws {
        let server: Socket
        do {
            server = try listener("::1")
        } catch let e as SocketError where e.errno == EADDRNOTAVAIL || e.errno == EAFNOSUPPORT {
            throw XCTSkip("no IPv6 loopback here: \(e)")
        }
        let accepting = echoServer(server)
        defer { try? accepting.kill(); server.close() }
        XCTAssertEqual(server.localAddress?.family, AF_INET6)
        let client = try Socket(family: AF_INET6)
        defer { client.close() }
        try withTimeout(5) {
            try client.connect(to: SocketAddress(ip: "::1", port: server.localAddress!.port))
            try client.sendAll([1, 2, 3])
            XCTAssertEqual(try client.recv(), [1, 2, 3])
        }
    }

    func testAThousandConcurrentClientsEachGetTheirOwnBytesBack() throws {
        let server = try listener()
        let accepting = echoServer(server)
        defer { try? accepting.kill(); server.close() }
        let port = server.localAddress!.port
        let clients = (0..<1_000).map { i in
            spawn { () throws -> Bool in
                let s = try Socket.connect(host: "127.0.0.1", port: port)
                defer { s.close() }
                let message = Array("client \(i) says hello".utf8)
                try s.sendAll(message)
                var got: [UInt8] = []
                while got.count < message.count {
                    let chunk = try s.recv()
                    if chunk.isEmpty { break }
                    got += chunk
                }
                return got == message
            }
        }
        try withTimeout(30) { try joinAll(clients, raiseError: true) }
        XCTAssertEqual(clients.filter { $0.value == true }.count, 1_000)
    }

    func testRecvTimesOutWithATimedOutError() throws {
        let server = try listener()
        defer { server.close() }
        let client = try Socket.connect(host: "127.0.0.1", port: server.localAddress!.port)
        defer { client.close() }
        XCTAssertThrowsError(try client.recv(timeout: 0.05)) { error in
            XCTAssertEqual((error as? SocketError)?.reason, .timedOut(seconds: 0.05), "\(error)")
            XCTAssertEqual((error as? SocketError)?.operation, "recv")
        }
        // The socket's default timeout applies to calls that pass none.
        client.timeout = 0.02
        XCTAssertThrowsError(try client.recv()) { error in
            XCTAssertEqual((error as? SocketError)?.reason, .timedOut(seconds: 0.02), "\(error)")
        }
    }

    func testConnectTimesOutWhenTheListenersQueueIsFull() throws {
        // A listener that never accepts, with the smallest queue: once it
        // is full the kernel drops further handshakes, so connect waits.
        let server = try listener(backlog: 0)
        defer { server.close() }
        let address = server.localAddress!
        var queued: [Socket] = []
        defer { for s in queued { s.close() } }
        var timedOut = false
        for _ in 0..<16 where !timedOut {
            let s = try Socket()
            queued.append(s)
            do {
                try s.connect(to: address, timeout: 0.2)
            } catch let e as SocketError {
                XCTAssertEqual(e.reason, .timedOut(seconds: 0.2), "\(e)")
                XCTAssertEqual(e.address, address)
                timedOut = true
            }
        }
        XCTAssertTrue(timedOut, "16 connects to a full queue all succeeded")
    }

    func testKillReachesAGreenletBlockedInConnect() throws {
        // A listener that never accepts, its queue filled: a further
        // connect waits in the handshake until it is killed.
        let server = try listener(backlog: 0)
        defer { server.close() }
        var queued: [Socket] = []
        defer { for s in queued { s.close() } }
        var blocked: Greenlet<Void>?
        for _ in 0..<16 where blocked == nil {
            let s = try Socket()
            queued.append(s)
            let g = spawn { try s.connect(to: server.localAddress!) }
            try Green.sleep(0.05)
            if !g.isReady { blocked = g } else { try g.join() }
        }
        guard let blocked else { return XCTFail("no connect blocked on the full queue") }
        try withTimeout(5) { try blocked.kill() }
        XCTAssertTrue(blocked.error is GreenletExit)
    }

    func testKillReachesAGreenletBlockedInAccept() throws {
        let server = try listener()
        defer { server.close() }
        var cleanedUp = false
        let g = spawn { defer { cleanedUp = true }; _ = try server.accept() }
        try Green.sleep(0)
        try withTimeout(5) { try g.kill() }
        XCTAssertTrue(cleanedUp)
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testKillReachesAGreenletBlockedInRecv() throws {
        let server = try listener()
        defer { server.close() }
        let client = try Socket.connect(host: "127.0.0.1", port: server.localAddress!.port)
        defer { client.close() }
        let g = spawn { _ = try client.recv() }
        try Green.sleep(0)
        try withTimeout(5) { try g.kill() }
        XCTAssertTrue(g.error is GreenletExit)
        // The socket is still usable: its wait ended cleanly.
        XCTAssertThrowsError(try client.recv(timeout: 0.01))
    }

    func testAnEnclosingTimeoutReachesAGreenletBlockedInRecv() throws {
        let server = try listener()
        defer { server.close() }
        let client = try Socket.connect(host: "127.0.0.1", port: server.localAddress!.port)
        defer { client.close() }
        let result = try withTimeout(0.05, otherwise: { "timed out" }) {
            _ = try client.recv()
            return "received"
        }
        XCTAssertEqual(result, "timed out")
    }

    func testAPeerResetSurfacesAsAnErrorWithErrno() throws {
        let server = try listener()
        defer { server.close() }
        let client = try Socket.connect(host: "127.0.0.1", port: server.localAddress!.port)
        defer { client.close() }
        let (accepted, _) = try withTimeout(5) { try server.accept() }
        // Linger 0: close sends a reset instead of a FIN.
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(accepted.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        accepted.close()
        XCTAssertThrowsError(try withTimeout(5) { try client.recv() }) { error in
            XCTAssertEqual((error as? SocketError)?.errno, ECONNRESET, "\(error)")
            XCTAssertTrue("\(error)".contains("recv"), "\(error)")
        }
    }

    func testClosingASocketWakesTheGreenletWaitingOnItWithClosed() throws {
        let server = try listener()
        defer { server.close() }
        let client = try Socket.connect(host: "127.0.0.1", port: server.localAddress!.port)
        let reader = spawn { () throws -> [UInt8] in try client.recv() }
        try Green.sleep(0)
        client.close()
        XCTAssertThrowsError(try withTimeout(5) { try reader.get() }) { error in
            XCTAssertEqual((error as? SocketError)?.reason, .closed, "\(error)")
        }
        XCTAssertThrowsError(try client.recv()) { error in
            XCTAssertEqual((error as? SocketError)?.reason, .closed)
        }
    }

    func testASecondReaderOfTheSameSocketGetsBusyInsteadOfStealingData() throws {
        let server = try listener()
        defer { server.close() }
        let client = try Socket.connect(host: "127.0.0.1", port: server.localAddress!.port)
        defer { client.close() }
        let first = spawn(name: "first-reader") { () throws -> [UInt8] in try client.recv() }
        try Green.sleep(0)
        XCTAssertThrowsError(try client.recv()) { error in
            XCTAssertEqual((error as? SocketError)?.reason, .busy(waiter: "first-reader"), "\(error)")
        }
        let (accepted, _) = try withTimeout(5) { try server.accept() }
        defer { accepted.close() }
        try accepted.sendAll([7])
        XCTAssertEqual(try withTimeout(5) { try first.get() }, [7])
    }

    func testUDPDatagramsCarryTheirSendersAddress() throws {
        let a = try Socket(type: .datagram)
        let b = try Socket(type: .datagram)
        defer { a.close(); b.close() }
        try a.bind(to: SocketAddress(ip: "127.0.0.1", port: 0))
        try b.bind(to: SocketAddress(ip: "127.0.0.1", port: 0))
        try b.sendTo([1, 2, 3], address: a.localAddress!)
        let (bytes, from) = try withTimeout(5) { try a.recvFrom() }
        XCTAssertEqual(bytes, [1, 2, 3])
        XCTAssertEqual(from, b.localAddress)
    }

    func testUnixDomainStreamSocketsEcho() throws {
        let path = "/tmp/swift-green-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        unlink(path)
        defer { unlink(path) }
        let address = try SocketAddress(unixPath: path)
        let server = try Socket.listen(on: address)
        let accepting = echoServer(server)
        defer { try? accepting.kill(); server.close() }
        let client = try Socket(family: AF_UNIX)
        defer { client.close() }
        try withTimeout(5) {
            try client.connect(to: address)
            try client.sendAll("unix")
            XCTAssertEqual(try client.recv(), Array("unix".utf8))
        }
        XCTAssertEqual(address.description, "unix:\(path)")
    }

    func testWaitReadableWorksOnAnyFileDescriptor() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        XCTAssertFalse(try waitReadable(fd: fds[0], timeout: 0.01))
        let writer = spawn { var b: UInt8 = 42; _ = write(fds[1], &b, 1) }
        XCTAssertTrue(try waitReadable(fd: fds[0], timeout: 5))
        try writer.join()
        XCTAssertTrue(try waitWritable(fd: fds[1], timeout: 5))
    }

    func testAddressesPrintAndCompare() throws {
        let a = try SocketAddress(ip: "127.0.0.1", port: 8080)
        XCTAssertEqual(a.description, "127.0.0.1:8080")
        XCTAssertEqual(try SocketAddress(ip: "::1", port: 80).description, "[::1]:80")
        XCTAssertEqual(a, try SocketAddress(ip: "127.0.0.1", port: 8080))
        XCTAssertNotEqual(a, try SocketAddress(ip: "127.0.0.1", port: 8081))
        XCTAssertThrowsError(try SocketAddress(ip: "localhost", port: 1))
        XCTAssertTrue(a.isLoopback)
        XCTAssertTrue(try SocketAddress(ip: "127.9.8.7", port: 1).isLoopback)
        XCTAssertTrue(try SocketAddress(ip: "::1", port: 1).isLoopback)
        XCTAssertTrue(try SocketAddress(ip: "::ffff:127.0.0.1", port: 1).isLoopback)
        XCTAssertFalse(try SocketAddress(ip: "128.0.0.1", port: 1).isLoopback)
        XCTAssertFalse(try SocketAddress(ip: "::2", port: 1).isLoopback)
        XCTAssertFalse(try SocketAddress(ip: "::ffff:10.0.0.1", port: 1).isLoopback)
    }

    func testNoFileDescriptorIsLeftAfterManyFailedConnects() throws {
        let holder = try refusingSocket()
        defer { holder.close() }
        let address = holder.localAddress!
        let before = openFDs()
        var refused = 0
        var connected = 0
        for _ in 0..<100_000 {
            do {
                let s = try Socket.connect(host: "127.0.0.1", port: address.port, timeout: 5)
                s.close()
                connected += 1
            } catch let e as SocketError where e.errno == ECONNREFUSED {
                refused += 1
            }
        }
        XCTAssertEqual(refused, 100_000, "\(connected) connects to \(address) succeeded")
        XCTAssertEqual(openFDs(), before)
    }
}
