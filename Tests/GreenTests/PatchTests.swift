import Foundation
import CPatchProbe
import Glibc
import Green
import GreenPatch
import XCTest

final class PatchTests: GreenTestCase {
    override func tearDown() {
        PatchMode.disable()
        super.tearDown()
    }

    /// Runs `body` in a greenlet while a ticker greenlet counts 10 ms
    /// ticks; returns the ticks seen while `body` ran.
    private func ticksDuring(_ body: @escaping () -> Void) throws -> Int {
        var ticks = 0
        var running = true
        let ticker = spawn(name: "ticker") {
            while running {
                try Green.sleep(0.01)
                ticks += 1
            }
        }
        try Green.sleep(0)   // the ticker starts and parks
        let before = ticks
        let worker = spawn(name: "c-sleeper") { body() }
        try worker.get()
        let during = ticks - before
        running = false
        try ticker.get()
        return during
    }

    func testCSleepBlocksTheHubWithoutPatchMode() throws {
        PatchMode.disable()
        // The C usleep holds the thread: the ticker cannot run meanwhile.
        let ticks = try ticksDuring { _ = patch_probe_usleep(300_000) }
        XCTAssertLessThanOrEqual(ticks, 1)
    }

    func testCSleepCooperatesInPatchMode() throws {
        PatchMode.enable()
        let calls = PatchMode.cooperativeCalls
        let ticks = try ticksDuring {
            _ = patch_probe_usleep(150_000)
            _ = patch_probe_nanosleep_ms(150)
        }
        XCTAssertGreaterThanOrEqual(ticks, 5, "the ticker ran while C slept")
        XCTAssertEqual(PatchMode.cooperativeCalls, calls + 2)
    }

    func testManyGreenletsSleepingInCOverlap() throws {
        PatchMode.enable()
        // 50 greenlets each sleep(1) in C: together about one second, not
        // fifty (the bound is loose on purpose: only overlap matters).
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        let start = Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        let sleepers = (0..<50).map { _ in spawn { XCTAssertEqual(patch_probe_sleep(1), 0) } }
        for s in sleepers { try s.get() }
        clock_gettime(CLOCK_MONOTONIC, &t)
        let elapsed = Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 - start
        XCTAssertLessThan(elapsed, 10, "50 C sleeps of 1 s overlapped")
        XCTAssertGreaterThanOrEqual(elapsed, 0.99)
    }

    func testOutsideGreenletsTheCallsAreLibcs() throws {
        PatchMode.enable()
        let calls = PatchMode.cooperativeCalls
        // The main greenlet, and a plain thread: not spawned greenlets.
        XCTAssertEqual(patch_probe_usleep(1_000), 0)
        XCTAssertEqual(try ThreadPool.shared.run { patch_probe_usleep(1_000) }, 0)
        XCTAssertEqual(PatchMode.cooperativeCalls, calls)
    }

    func testAKillReachesAGreenletSleepingInC() throws {
        PatchMode.enable()
        var result: Int32 = 0
        var errnoSeen: Int32 = 0
        let g = spawn {
            result = patch_probe_usleep(30_000_000)
            errnoSeen = errno
            try Green.sleep(10)   // the re-armed kill is thrown here
        }
        try Green.sleep(0.01)
        try g.kill()
        XCTAssertEqual(result, -1)
        XCTAssertEqual(errnoSeen, EINTR)
        XCTAssertTrue(g.error is GreenletExit, "\(String(describing: g.error))")
    }

    func testBlockingCSocketClientsCooperateWithAServerOnTheSameHub() throws {
        PatchMode.enable()
        // A green echo server on this hub; C clients in greenlets of the
        // same hub: without patch mode their blocking connect/read would
        // stall the hub, and the server, for ever.
        let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { conn, _ in
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = try buffer.withUnsafeMutableBytes { try conn.recv(into: $0) }
            try buffer.withUnsafeBytes { try conn.sendAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        server.start()
        defer { _ = try? server.stop(timeout: 1) }
        let port = Int32(server.address.port)
        let clients = (0..<10).map { i in
            spawn { () -> String in
                var reply = [CChar](repeating: 0, count: 64)
                let n = patch_probe_roundtrip(port, "hello \(i)", &reply, 63, Int("hello \(i)".utf8.count))
                XCTAssertGreaterThan(n, 0, "errno \(-n)")
                return String(decoding: reply.prefix(max(0, n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        XCTAssertEqual(try clients.map { try $0.get() }, (0..<10).map { "hello \($0)" })
    }

    func testABlockingCServerAcceptsWhileAGreenClientConnects() throws {
        PatchMode.enable()
        // A blocking listening socket made in C style (no O_NONBLOCK).
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, size) } }
        XCTAssertEqual(listen(listener, 4), 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &size) } }
        let port = UInt16(bigEndian: address.sin_port)
        let cServer = spawn { patch_probe_serve_one(listener) }
        let client = spawn { () -> [UInt8] in
            let s = try Socket.connect(host: "127.0.0.1", port: port, timeout: 5)
            defer { s.close() }
            try s.sendAll(Array("quiet".utf8))
            var buffer = [UInt8](repeating: 0, count: 16)
            let n = try buffer.withUnsafeMutableBytes { try s.recv(into: $0, timeout: 5) }
            return Array(buffer[..<n])
        }
        XCTAssertEqual(try client.get(), Array("QUIET".utf8))
        XCTAssertEqual(try cServer.get(), 5)
    }

    func testPollAndGetaddrinfoCooperate() throws {
        PatchMode.enable()
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        // A C poll waits for data another greenlet of this hub sends.
        let poller = spawn { patch_probe_poll_readable(fds[0], 5_000) }
        let writer = spawn { () -> Int in
            try Green.sleep(0.02)
            return fds[1] >= 0 ? Glibc.send(fds[1], "x", 1, 0) : -1
        }
        XCTAssertEqual(try writer.get(), 1)
        XCTAssertEqual(try poller.get(), 1)
        // A C poll that times out, cooperatively: the ticker runs meanwhile.
        let ticks = try ticksDuring { _ = patch_probe_poll_readable(fds[1], 150) }
        XCTAssertGreaterThanOrEqual(ticks, 5)
        // getaddrinfo from C, on a pool thread.
        let calls = PatchMode.cooperativeCalls
        let lookup = spawn { patch_probe_resolve("127.0.0.1") }
        XCTAssertEqual(try lookup.get(), 0)
        XCTAssertGreaterThan(PatchMode.cooperativeCalls, calls)
    }

    func testFoundationFileHandleReadingASocketCooperates() throws {
        PatchMode.enable()
        // Foundation's read(2) resolves to the program's interposer (the
        // linker exports a symbol that a linked shared library uses).
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[1]) }
        let reader = spawn { () -> Data in
            let handle = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
            return try handle.read(upToCount: 5) ?? Data()
        }
        let writer = spawn { () -> Int in
            try Green.sleep(0.02)   // the reader is parked in FileHandle.read by now
            return Glibc.send(fds[1], "hello", 5, 0)
        }
        XCTAssertEqual(try writer.get(), 5)
        XCTAssertEqual(try reader.get(), Data("hello".utf8))
    }
}
