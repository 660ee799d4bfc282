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

/// Name resolution and the thread pool under it.
final class ResolverTests: GreenTestCase {
    func testLocalhostResolvesToALoopbackAddress() throws {
        let addresses = try withTimeout(10) { try Resolver.resolve(host: "localhost", port: 80) }
        XCTAssertFalse(addresses.isEmpty)
        for a in addresses {
            XCTAssertTrue(a.host == "127.0.0.1" || a.host == "::1", "\(a)")
            XCTAssertEqual(a.port, 80)
        }
    }

    func testTheHubKeepsRunningGreenletsWhileALookupIsPending() throws {
        // The pool's only thread is held until the ticker has ticked five
        // times, and the lookup queues behind it: the lookup can only
        // finish if the hub ran the ticker while the caller waited.
        let pool = ThreadPool(size: 1)
        let gate = DispatchSemaphore(value: 0)
        pool.submit { gate.wait() }
        var ticks = 0
        let ticker = spawn {
            while ticks < 5 {
                ticks += 1
                try Green.sleep(0.001)
            }
            gate.signal()
        }
        let addresses = try withTimeout(10) { try Resolver.resolve(host: "localhost", port: 80, pool: pool) }
        XCTAssertFalse(addresses.isEmpty)
        XCTAssertEqual(ticks, 5)
        try withTimeout(5) { try ticker.join() }
    }

    func testAnUnknownNameFailsWithTheNameInTheError() throws {
        XCTAssertThrowsError(try withTimeout(10) {
            try Resolver.resolve(host: "no-such-host.invalid", port: 80)
        }) { error in
            XCTAssertTrue(error is Resolver.Failure, "\(error)")
            XCTAssertTrue("\(error)".contains("no-such-host.invalid"))
        }
    }

    func testNumericAddressesNeedNoLookup() throws {
        XCTAssertEqual(try Resolver.resolve(host: "127.0.0.1", port: 9), [try SocketAddress(ip: "127.0.0.1", port: 9)])
    }
}

final class ThreadPoolTests: GreenTestCase {
    func testRunReturnsTheValueAndRethrowsTheError() throws {
        let pool = ThreadPool(size: 2)
        XCTAssertEqual(try pool.run { 6 * 7 }, 42)
        XCTAssertThrowsError(try pool.run { () throws -> Int in throw TestError("on a thread") }) {
            XCTAssertEqual($0 as? TestError, TestError("on a thread"))
        }
    }

    func testAHundredBlockingCallsOnTenThreadsRunTenAtATimeWhileTheHubStaysResponsive() throws {
        let pool = ThreadPool(size: 10)
        let concurrency = ConcurrencyGauge()
        let (elapsed, ticks) = try countingTicks(every: 0.01) { () throws -> Double in
            let start = Hub.current.nowUpdated()
            let calls = (0..<100).map { _ in
                spawn { try pool.run { concurrency.enter(); usleep(100_000); concurrency.leave() } }
            }
            try withTimeout(30) { try joinAll(calls, raiseError: true) }
            return Hub.current.nowUpdated() - start
        }
        XCTAssertEqual(concurrency.maximum, 10)
        // Ten rounds of 0.1 s cannot take less than a second.
        XCTAssertGreaterThanOrEqual(elapsed, 0.95)
        // The hub ran the ticker meanwhile (about every 10 ms).
        XCTAssertGreaterThan(ticks, 20)
    }

    func testAKilledWaiterStopsWaitingWhileItsCallFinishesOnTheThread() throws {
        let pool = ThreadPool(size: 1)
        let finished = AsyncResult<Bool>()
        let g = spawn { try pool.run { usleep(50_000); finished.set(true) } }
        try Green.sleep(0)
        try withTimeout(5) { try g.kill() }
        XCTAssertTrue(g.error is GreenletExit)
        XCTAssertEqual(try finished.get(timeout: 5), true)
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

/// Counts how many threads are inside at once; any thread.
final class ConcurrencyGauge: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    private(set) var maximum = 0

    func enter() {
        lock.lock()
        current += 1
        maximum = max(maximum, current)
        lock.unlock()
    }

    func leave() {
        lock.lock()
        current -= 1
        lock.unlock()
    }
}

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


final class IdleConnectionsTests: GreenTestCase {
    func testTheLongestIdleAreClosedFirstAndTheirWaitersSeeClosed() throws {
        let idle = IdleConnections()
        var pairs: [(Socket, Socket)] = []
        defer { for (a, b) in pairs { a.close(); b.close() } }
        for _ in 0..<4 { pairs.append(try connectedSocketPair()) }
        var waiters: [Greenlet<String>] = []
        for (i, (a, _)) in pairs.enumerated() {
            waiters.append(spawn {
                let entry = IdleConnections.Entry(a)
                do {
                    let data = try idle.whileIdle(entry) { try a.recv() }
                    return "\(i) got \(data.count)"
                } catch let e as SocketError where e.reason == .closed {
                    return "\(i) closed"
                }
            })
            try Green.sleep(0)   // each starts waiting before the next
        }
        XCTAssertEqual(idle.count, 4)
        // One that is answered leaves the list.
        try pairs[1].1.sendAll("x")
        XCTAssertEqual(try waiters[1].get(), "1 got 1")
        XCTAssertEqual(idle.count, 3)
        XCTAssertEqual(idle.closeLongestIdle(2), 2)
        XCTAssertEqual(try waiters[0].get(), "0 closed")
        XCTAssertEqual(try waiters[2].get(), "2 closed")
        XCTAssertTrue(pairs[0].0.isClosed)
        XCTAssertFalse(pairs[3].0.isClosed)
        XCTAssertEqual(idle.count, 1)
        XCTAssertEqual(idle.closedTotal, 2)
        // The list may run dry: it closes what it has.
        XCTAssertEqual(idle.closeLongestIdle(5), 1)
        XCTAssertEqual(try waiters[3].get(), "3 closed")
        XCTAssertEqual(idle.count, 0)
        XCTAssertEqual(idle.closeLongestIdle(1), 0)
    }

    func testAKilledWaiterLeavesTheList() throws {
        let idle = IdleConnections.current
        let before = idle.count
        let (a, b) = try connectedSocketPair()
        defer { a.close(); b.close() }
        let entry = IdleConnections.Entry(a)
        let g = spawn { try idle.whileIdle(entry) { try a.recv() } }
        try Green.sleep(0)
        XCTAssertEqual(idle.count, before + 1)
        try g.kill()
        XCTAssertThrowsError(try g.get())
        XCTAssertEqual(idle.count, before, "a killed waiter leaves the list")
    }
}

final class DatagramServerTests: GreenTestCase {
    func testADatagramServerAnswersEachSender() throws {
        let server = try DatagramServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { data, sender, socket in
            try socket.sendTo(data.reversed(), address: sender)
        }
        server.start()
        let clients = (0..<20).map { i in
            spawn { () throws -> Bool in
                let s = try Socket(type: .datagram)
                defer { s.close() }
                try s.bind(to: SocketAddress(ip: "127.0.0.1", port: 0))
                let message = Array("datagram \(i)".utf8)
                try s.sendTo(message, address: server.address)
                let (reply, from) = try s.recvFrom(timeout: 5)
                return reply == message.reversed() && from == server.address
            }
        }
        try withTimeout(10) { try joinAll(clients, raiseError: true) }
        XCTAssertTrue(clients.allSatisfy { $0.value == true })
        XCTAssertTrue(try withTimeout(5) { try server.stop(timeout: 5) })
        XCTAssertFalse(server.isServing)
    }
}

final class SelectTests: GreenTestCase {
    func testSelectReturnsTheReadyDescriptors() throws {
        var a: [Int32] = [0, 0], b: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&a), 0)
        XCTAssertEqual(pipe(&b), 0)
        defer { for fd in a + b { close(fd) } }
        XCTAssertEqual(try select(readable: [a[0], b[0]], timeout: 0.01).readable, [])
        let writer = spawn { var x: UInt8 = 1; _ = write(b[1], &x, 1) }
        let ready = try select(readable: [a[0], b[0]], writable: [], timeout: 5)
        try writer.join()
        XCTAssertEqual(ready.readable, [b[0]])
        XCTAssertEqual(try select(writable: [a[1]], timeout: 5).writable, [a[1]])
    }
}
