import Foundation
import CPatchProbe
import Glibc
import Green
import GreenPatch
import XCTest
import GreenTestSupport

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
            try letOthersRun()
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
            try letOthersRun()
            return Glibc.send(fds[1], "hello", 5, 0)
        }
        XCTAssertEqual(try writer.get(), 5)
        XCTAssertEqual(try reader.get(), Data("hello".utf8))
    }

    // MARK: - select, poll and epoll

    func testSelectPollAndEpollWaitsOverlapInPatchMode() throws {
        try withASocketPairInPatchMode { a, b in
            for kind in WaitKind.available {
                // 20 greenlets each wait 0.3 s in C for an fd that stays quiet:
                // about 0.3 s together, not 6.
                let start = monotonicNow()
                let waiters = (0..<20).map { _ in spawn { kind.wait([a], [1], timeoutMs: 300) } }
                let results = try waiters.map { try $0.get() }
                let elapsed = monotonicNow() - start
                for r in results {
                    XCTAssertEqual(r.outcome, WaitOutcome(rc: 0, error: 0, ready: [0]), "\(kind)")
                    if kind == .select { XCTAssertEqual(r.leftUs, 0, "select leaves no time in its timeval") }
                }
                XCTAssertGreaterThanOrEqual(elapsed, 0.29, "\(kind)")
                XCTAssertLessThan(elapsed, 3, "\(kind): 20 waits of 0.3 s overlapped")
                // Over no fd at all, a wait is a sleep: the ticker runs meanwhile.
                var empty: WaitResult?
                let ticks = try ticksDuring { empty = kind.wait([], [], timeoutMs: 150) }
                XCTAssertEqual(empty?.outcome, WaitOutcome(rc: 0, error: 0, ready: []), "\(kind)")
                XCTAssertGreaterThanOrEqual(ticks, 5, "\(kind)")
            }
        }
    }

    func testSelectPollAndEpollReportWhatLibcReports() throws {
        PatchMode.enable()
        let tcp = try tcpPair()
        defer { close(tcp.client); close(tcp.server) }
        let (a, b) = try socketPair()
        defer { close(a); close(b) }
        // The server's end has one urgent byte: an exceptional condition,
        // not readable. `a` has data; `b` is writable and has none.
        XCTAssertEqual(Glibc.send(tcp.client, "!", 1, Int32(MSG_OOB)), 1)
        XCTAssertEqual(Glibc.send(b, "x", 1, 0), 1)
        var urgent = pollfd(fd: tcp.server, events: Int16(POLLPRI), revents: 0)
        XCTAssertEqual(Glibc.poll(&urgent, 1, 5_000), 1, "the urgent byte arrived")
        let fds = [tcp.server, a, b]
        let what: [Int32] = [1 | 4, 1 | 4, 1 | 2]
        for kind in WaitKind.available {
            // On the main greenlet: libc's call. In a spawned one: patch mode's.
            let libc = kind.wait(fds, what, timeoutMs: 5_000)
            let green = try spawn { kind.wait(fds, what, timeoutMs: 5_000) }.get()
            XCTAssertEqual(libc.outcome, WaitOutcome(rc: 3, error: 0, ready: [4, 1, 2]), "\(kind)")
            XCTAssertEqual(green.outcome, libc.outcome, "\(kind)")
            if kind == .select {
                XCTAssertGreaterThan(green.leftUs, 4_000_000)
                XCTAssertLessThanOrEqual(green.leftUs, 5_000_000)
            }
        }
        // A closed fd (within the fd table: the kernel's select ignores fds
        // beyond it): select's EBADF, poll's POLLNVAL, the same both ways.
        let closed = dup(a)
        XCTAssertGreaterThanOrEqual(closed, 0)
        close(closed)
        for kind in WaitKind.available where !kind.isEpoll {
            let libc = kind.wait([a, closed], [1, 1], timeoutMs: 5_000)
            let green = try spawn { kind.wait([a, closed], [1, 1], timeoutMs: 5_000) }.get()
            XCTAssertEqual(green.outcome, libc.outcome, "\(kind)")
            XCTAssertEqual(libc.outcome.rc, kind.isSelect ? -1 : 2, "\(kind)")
            if kind.isSelect { XCTAssertEqual(libc.outcome.error, EBADF) }
        }
    }

    func testSelectPollAndEpollWakeWhenAnotherGreenletMakesTheFdReady() throws {
        PatchMode.enable()
        for kind in WaitKind.available {
            let (a, b) = try socketPair()
            let tcp = try tcpPair()
            defer { close(a); close(b); close(tcp.client); close(tcp.server) }
            let start = monotonicNow()
            let reader = spawn { kind.wait([a], [1], timeoutMs: 5_000) }
            // Exceptional conditions only: an urgent byte wakes it.
            let urgent = spawn { kind.wait([tcp.server], [4], timeoutMs: 5_000) }
            try Green.sleep(0.01)
            XCTAssertTrue(reader.isStarted && !reader.isReady, "\(kind): parked in C")
            XCTAssertTrue(urgent.isStarted && !urgent.isReady, "\(kind): parked in C")
            XCTAssertEqual(Glibc.send(b, "x", 1, 0), 1)
            XCTAssertEqual(Glibc.send(tcp.client, "!", 1, Int32(MSG_OOB)), 1)
            let read = try reader.get(), except = try urgent.get()
            XCTAssertEqual(read.outcome, WaitOutcome(rc: 1, error: 0, ready: [1]), "\(kind)")
            XCTAssertEqual(except.outcome, WaitOutcome(rc: 1, error: 0, ready: [4]), "\(kind)")
            XCTAssertLessThan(monotonicNow() - start, 4, "\(kind) woke on the event, not at its timeout")
            if kind == .select { XCTAssertGreaterThan(read.leftUs, 1_000_000) }
        }
    }

    func testAKillOrATimeoutReachesAGreenletInSelectPollOrEpoll() throws {
        PatchMode.enable()
        for kind in WaitKind.available {
            let (a, b) = try socketPair()
            defer { close(a); close(b) }
            var seen: WaitResult?
            let g = spawn {
                seen = kind.wait([a], [1], timeoutMs: -1)
                try Green.sleep(10)   // the re-armed kill is thrown here
            }
            try withSafetyNet(writingTo: b, after: 5) {
                try Green.sleep(0.01)
                XCTAssertTrue(g.isStarted && !g.isReady)
                XCTAssertNil(seen, "\(kind): still in C")
                try g.kill()
            }
            // select leaves its sets as they were asked (as a signal would).
            XCTAssertEqual(seen?.outcome, WaitOutcome(rc: -1, error: EINTR, ready: [kind.isSelect ? 1 : 0]), "\(kind)")
            XCTAssertTrue(g.error is GreenletExit, "\(kind): \(String(describing: g.error))")

            let timed = spawn { () -> (WaitResult?, Bool) in
                var result: WaitResult?
                do {
                    try withTimeout(0.05) {
                        result = kind.wait([a], [1], timeoutMs: -1)
                        try Green.sleep(10)
                    }
                } catch is TimeoutError {
                    return (result, true)
                }
                return (result, false)
            }
            let (result, threw) = try withSafetyNet(writingTo: b, after: 5) { try timed.get() }
            XCTAssertEqual(result?.outcome.rc, -1, "\(kind)")
            XCTAssertEqual(result?.outcome.error, EINTR, "\(kind)")
            XCTAssertTrue(threw, "\(kind): the timeout reached the greenlet after C returned")
        }
    }

    func testOutsideGreenletsSelectPollAndEpollAreLibcs() throws {
        try withASocketPairInPatchMode { a, b in
            let calls = PatchMode.cooperativeCalls
            for kind in WaitKind.available {
                let start = monotonicNow()
                XCTAssertEqual(kind.wait([a], [1], timeoutMs: 50).outcome, WaitOutcome(rc: 0, error: 0, ready: [0]))
                XCTAssertGreaterThanOrEqual(monotonicNow() - start, 0.049, "\(kind)")
                let other = try ThreadPool.shared.run { kind.wait([a], [1], timeoutMs: 20) }
                XCTAssertEqual(other.outcome, WaitOutcome(rc: 0, error: 0, ready: [0]), "\(kind)")
            }
            XCTAssertEqual(PatchMode.cooperativeCalls, calls)
            // Patch mode off: a greenlet's C select holds the thread.
            PatchMode.disable()
            let ticks = try ticksDuring { _ = WaitKind.select.wait([a], [1], timeoutMs: 300) }
            XCTAssertLessThanOrEqual(ticks, 1)
        }
    }

    func testWaitsWithASignalMaskAreLibcsCalls() throws {
        try withASocketPairInPatchMode { a, b in
            // libc's call applies the mask for exactly its wait: the pending
            // signal it unblocks is handled and the call fails with EINTR at
            // once. A cooperative wait would let 5 s pass and return 0.
            for kind in WaitKind.available where kind != .select && kind != .poll && kind != .epollWait {
                let calls = PatchMode.cooperativeCalls
                let start = monotonicNow()
                let r = try spawn { () -> [Int32] in
                    var error: Int32 = 0, handled: Int32 = 0
                    let rc = patch_probe_wait_unmasking(kind.rawValue, a, &error, &handled)
                    return [rc, error, handled]
                }.get()
                XCTAssertEqual(r, [-1, EINTR, 1], "\(kind)")
                XCTAssertLessThan(monotonicNow() - start, 4, "\(kind)")
                XCTAssertEqual(PatchMode.cooperativeCalls, calls, "\(kind) with a mask did not cooperate")
            }
        }
    }

    func testSelectAndPollCooperateWithNoFdLeftForTheirEpollInstance() throws {
        try withASocketPairInPatchMode { a, b in
            for kind in [WaitKind.select, .pselect, .poll, .ppoll] {
                var saved = 0
                XCTAssertEqual(patch_probe_limit_fds(&saved), 0, "no fd can be made now")
                defer { patch_probe_restore_fds(saved) }
                // They check every 10 ms instead: still cooperative, still
                // woken by the event, still ending at the timeout.
                var quiet: WaitResult?
                let ticks = try ticksDuring { quiet = kind.wait([a], [1], timeoutMs: 200) }
                XCTAssertEqual(quiet?.outcome, WaitOutcome(rc: 0, error: 0, ready: [0]), "\(kind)")
                XCTAssertGreaterThanOrEqual(ticks, 5, "\(kind)")
                let start = monotonicNow()
                let reader = spawn { kind.wait([a], [1], timeoutMs: 5_000) }
                try letOthersRun()
                XCTAssertTrue(reader.isStarted && !reader.isReady, "\(kind)")
                XCTAssertEqual(Glibc.send(b, "x", 1, 0), 1)
                XCTAssertEqual(try reader.get().outcome, WaitOutcome(rc: 1, error: 0, ready: [1]), "\(kind)")
                XCTAssertLessThan(monotonicNow() - start, 2, "\(kind) woke on the event")
                var byte: UInt8 = 0
                XCTAssertEqual(Glibc.recv(a, &byte, 1, 0), 1)
            }
        }
    }

    // MARK: - More sockets

    func testRecvfromAndSendtoOnUDPSocketsCooperate() throws {
        PatchMode.enable()
        let (receiver, port) = try udpSocket()
        let (sender, senderPort) = try udpSocket()
        defer { close(receiver); close(sender) }
        // A bound in case the receive held the thread: libc's would give up
        // (EAGAIN) after 5 s, and the sender, on this hub, never ran.
        setSocketTimeout(receiver, SO_RCVTIMEO, 5)
        let reading = spawn { () -> (Int, String, Int32) in
            var buffer = [CChar](repeating: 0, count: 64)
            var from: Int32 = 0
            let n = patch_probe_recvfrom(receiver, &buffer, 64, &from)
            return (n, string(buffer, n), from)
        }
        let sending = spawn { () -> Int in
            try letOthersRun()
            return patch_probe_sendto(sender, "datagram", 8, Int32(port))
        }
        XCTAssertEqual(try sending.get(), 8)
        let (n, text, from) = try reading.get()
        XCTAssertEqual(n, 8)
        XCTAssertEqual(text, "datagram")
        XCTAssertEqual(from, Int32(senderPort))

        // SO_RCVTIMEO ends a cooperative receive as it ends libc's (EAGAIN),
        // and 20 such receives overlap.
        let sockets = try (0..<20).map { _ in try udpSocket().fd }
        defer { for s in sockets { close(s) } }
        for s in sockets { setSocketTimeout(s, SO_RCVTIMEO, 0.3) }
        let start = monotonicNow()
        let waits = sockets.map { s in
            spawn { () -> Int in
                var received = 0
                _ = try? withTimeout(5) {   // a bound should SO_RCVTIMEO be ignored
                    var buffer = [CChar](repeating: 0, count: 16)
                    var from: Int32 = 0
                    received = patch_probe_recvfrom(s, &buffer, 16, &from)
                }
                return received
            }
        }
        for w in waits { XCTAssertEqual(try w.get(), -Int(EAGAIN)) }
        let elapsed = monotonicNow() - start
        XCTAssertGreaterThanOrEqual(elapsed, 0.29)
        XCTAssertLessThan(elapsed, 3, "20 receives timing out after 0.3 s overlapped")
    }

    func testRecvmsgAndSendmsgCarryIovecsDescriptorsAndWaitAll() throws {
        try withASocketPairInPatchMode { a, b in
            setSocketTimeout(a, SO_RCVTIMEO, 5)
            var pipeFDs: [Int32] = [0, 0]
            XCTAssertEqual(pipe(&pipeFDs), 0)
            defer { close(pipeFDs[0]); close(pipeFDs[1]) }
            let receiving = spawn { () -> (Int, String, String, Int32, Int32) in
                var first = [CChar](repeating: 0, count: 3), second = [CChar](repeating: 0, count: 10)
                var passed: Int32 = -1, flags: Int32 = -1
                let n = patch_probe_recvmsg(a, &first, 3, &second, 10, 0, &passed, &flags)
                return (n, string(first, min(n, 3)), string(second, max(0, n - 3)), passed, flags)
            }
            let sending = spawn { () -> Int in
                try letOthersRun()
                return patch_probe_sendmsg(b, "abc", 3, "defgh", 5, pipeFDs[0])
            }
            XCTAssertEqual(try sending.get(), 8)
            let (n, first, second, passed, flags) = try receiving.get()
            XCTAssertEqual(n, 8)
            XCTAssertEqual(first, "abc")
            XCTAssertEqual(second, "defgh")
            XCTAssertEqual(flags, 0)
            XCTAssertGreaterThanOrEqual(passed, 0, "the fd came along")
            if passed >= 0 {
                var mine = stat(), theirs = stat()
                XCTAssertEqual(fstat(pipeFDs[0], &mine), 0)
                XCTAssertEqual(fstat(passed, &theirs), 0)
                XCTAssertEqual(mine.st_ino, theirs.st_ino)
                close(passed)
            }

            // MSG_WAITALL: one call takes all 13 bytes, sent in two parts.
            let waiting = spawn { () -> (Int, String) in
                var first = [CChar](repeating: 0, count: 3), second = [CChar](repeating: 0, count: 10)
                var passed: Int32 = -1, flags: Int32 = -1
                let n = patch_probe_recvmsg(a, &first, 3, &second, 10, Int32(MSG_WAITALL), &passed, &flags)
                return (n, string(first, min(n, 3)) + string(second, max(0, n - 3)))
            }
            let parts = spawn { () -> [Int] in
                let one = patch_probe_sendmsg(b, "abc", 3, "de", 2, -1)
                try letOthersRun()
                return [one, patch_probe_send(b, "fghijklm", 8, 0)]
            }
            XCTAssertEqual(try parts.get(), [5, 8])
            let (total, text) = try waiting.get()
            XCTAssertEqual(total, 13)
            XCTAssertEqual(text, "abcdefghijklm")
        }
    }

    func testReadvAndWritevOnASocketCooperate() throws {
        try withASocketPairInPatchMode { a, b in
            setSocketTimeout(a, SO_RCVTIMEO, 5)
            let reading = spawn { () -> (Int, String, String) in
                var first = [CChar](repeating: 0, count: 3), second = [CChar](repeating: 0, count: 10)
                let n = patch_probe_readv(a, &first, 3, &second, 10)
                return (n, string(first, min(n, 3)), string(second, max(0, n - 3)))
            }
            let writing = spawn { () -> Int in
                try letOthersRun()
                return patch_probe_writev(b, "abc", 3, "defgh", 5)
            }
            XCTAssertEqual(try writing.get(), 8)
            let (n, first, second) = try reading.get()
            XCTAssertEqual(n, 8)
            XCTAssertEqual(first, "abc")
            XCTAssertEqual(second, "defgh")
        }
    }

    func testASendGoesOnUntilAllIsSentAndWaitAllUntilAllCame() throws {
        try withASocketPairInPatchMode { a, b in
            // Bounds in case a call held the thread (its peer is on this hub).
            setSocketTimeout(a, SO_SNDTIMEO, 10)
            setSocketTimeout(b, SO_RCVTIMEO, 10)
            let size = 4 << 20   // far more than the socket buffers hold
            let data = (0..<size).map { CChar(truncatingIfNeeded: $0 &* 31) }
            for viaWrite in [false, true] {
                // Like libc's on a blocking stream socket: one call sends it all.
                let sending = spawn { viaWrite ? patch_probe_write(a, data, size) : patch_probe_send(a, data, size, 0) }
                let receiving = spawn { () -> (Int, Bool) in
                    var buffer = [CChar](repeating: 0, count: size)
                    let n = patch_probe_recv(b, &buffer, size, Int32(MSG_WAITALL))
                    return (n, buffer == data)
                }
                XCTAssertEqual(try sending.get(), size, viaWrite ? "write" : "send")
                let (n, same) = try receiving.get()
                XCTAssertEqual(n, size)
                XCTAssertTrue(same)
            }
            // MSG_WAITALL stops at the end of the stream with what came.
            let short = spawn { () -> Int in
                var buffer = [CChar](repeating: 0, count: 100)
                return patch_probe_recv(b, &buffer, 100, Int32(MSG_WAITALL))
            }
            try Green.sleep(0.01)
            XCTAssertEqual(patch_probe_send(a, "0123456789", 10, 0), 10)
            XCTAssertEqual(shutdown(a, Int32(SHUT_WR)), 0)
            XCTAssertEqual(try short.get(), 10)

            // A kill cuts a send short, as a signal would: what was sent so far.
            let (c, d) = try socketPair()
            defer { close(c); close(d) }
            setSocketTimeout(c, SO_SNDTIMEO, 5)   // libc's would give up after 5 s
            var sent = -1
            let g = spawn {
                sent = patch_probe_send(c, data, size, 0)   // nobody reads d
                try Green.sleep(10)
            }
            try letOthersRun()
            XCTAssertTrue(g.isStarted && !g.isReady)
            XCTAssertEqual(sent, -1, "still in send, parked")
            try g.kill()
            XCTAssertGreaterThan(sent, 0)
            XCTAssertLessThan(sent, size)
        }
    }

    func testSocketTimeoutsEndCooperativeReceivesAndAccepts() throws {
        try withASocketPairInPatchMode { a, b in
            setSocketTimeout(a, SO_RCVTIMEO, 0.2)
            var received = 0
            let start = monotonicNow()
            // withTimeout bounds the test should SO_RCVTIMEO be ignored.
            let ticks = try ticksDuring {
                _ = try? withTimeout(5) {
                    var buffer = [CChar](repeating: 0, count: 16)
                    received = patch_probe_recv(a, &buffer, 16, 0)
                }
            }
            XCTAssertEqual(received, -Int(EAGAIN))
            XCTAssertGreaterThanOrEqual(monotonicNow() - start, 0.19)
            XCTAssertGreaterThanOrEqual(ticks, 5, "the ticker ran meanwhile")

            let listener = patch_probe_unix_listener("swift-green-patch-accept-\(getpid())", 4)
            XCTAssertGreaterThanOrEqual(listener, 0)
            defer { close(listener) }
            setSocketTimeout(listener, SO_RCVTIMEO, 0.2)
            var accepted = 0
            let acceptTicks = try ticksDuring {
                _ = try? withTimeout(5) { accepted = patch_probe_accept(listener) }
            }
            XCTAssertEqual(accepted, -Int(EAGAIN))
            XCTAssertGreaterThanOrEqual(acceptTicks, 5)
        }
    }

    func testAUnixConnectWaitsForRoomInTheListenersBacklog() throws {
        PatchMode.enable()
        let name = "swift-green-patch-backlog-\(getpid())"
        let listener = patch_probe_unix_listener(name, 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener) }
        let first = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let second = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(first); close(second) }
        XCTAssertEqual(patch_probe_connect_unix(first, name), 0, "the backlog had room for one")
        setSocketTimeout(second, SO_SNDTIMEO, 5)   // libc's would wait 5 s, then EAGAIN
        let connecting = spawn { patch_probe_connect_unix(second, name) }
        try letOthersRun()
        XCTAssertTrue(connecting.isStarted && !connecting.isReady, "waiting for room, cooperatively")
        let start = monotonicNow()
        let accepted = accept(listener, nil, nil)
        XCTAssertGreaterThanOrEqual(accepted, 0)
        defer { close(accepted) }
        XCTAssertEqual(try connecting.get(), 0)
        XCTAssertLessThan(monotonicNow() - start, 2)
    }

    func testClockNanosleepCooperates() throws {
        PatchMode.enable()
        let start = monotonicNow()
        let sleepers = (0..<40).map { i in spawn { patch_probe_clock_nanosleep_ms(Int32(i % 2), 300) } }
        for s in sleepers { XCTAssertEqual(try s.get(), 0) }
        let elapsed = monotonicNow() - start
        XCTAssertGreaterThanOrEqual(elapsed, 0.29)
        XCTAssertLessThan(elapsed, 3, "40 clock_nanosleeps of 0.3 s overlapped")
    }

    // MARK: - Exported for every library

    func testEveryInterposerIsInTheProgramsDynamicSymbols() throws {
        // A shared library's call to one of these names, or a dlopen'ed
        // library's, binds to the first definition among the program's
        // dynamic symbols: it must be the interposer's.
        XCTAssertEqual(PatchMode.unexported, [])
        XCTAssertEqual(Set(PatchMode.functions), [
            "sleep", "usleep", "nanosleep", "clock_nanosleep", "poll", "ppoll", "select", "pselect",
            "epoll_wait", "epoll_pwait", "epoll_pwait2", "read", "write", "readv", "writev", "recv", "send",
            "recvfrom", "sendto", "recvmsg", "sendmsg", "connect", "accept", "accept4", "__read_chk",
            "__recv_chk", "__recvfrom_chk", "__poll_chk", "__ppoll_chk", "getaddrinfo",
        ])
    }

    func testALibraryLoadedLaterCooperates() throws {
        guard let compiler = ["cc", "clang", "gcc"].lazy.compactMap(findOnPath).first else {
            throw XCTSkip("no C compiler (cc, clang, gcc) on PATH to build the library this test loads")
        }
        var template = Array("/tmp/green-patch-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { return XCTFail("mkdtemp: errno \(errno)") }
        let directory = String(cValue: dir)
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        // read and poll go through the entry points that code built with
        // _FORTIFY_SOURCE calls (as distributions build their libraries)
        // when the buffer's size is known: called by name here, as the
        // compiler's choice depends on the compiler.
        let source = """
            #include <poll.h>
            #include <sys/select.h>
            #include <sys/types.h>
            #include <unistd.h>
            ssize_t __read_chk(int fd, void *buffer, size_t length, size_t buffer_size);
            int __poll_chk(struct pollfd *fds, nfds_t count, int timeout, size_t fds_size);
            int lib_sleep_then_select(void) {
                if (sleep(1) != 0) return -1;
                struct timeval t = { 0, 500000 };
                return select(0, NULL, NULL, NULL, &t);
            }
            long lib_read(int fd, long n) {
                char buffer[64];
                return (long)__read_chk(fd, buffer, (size_t)n, sizeof buffer);
            }
            int lib_poll(int fd, int n) {
                struct pollfd p[2] = { { fd, POLLIN, 0 }, { -1, 0, 0 } };
                return __poll_chk(p, (nfds_t)n, 5000, sizeof p);
            }
            """
        try source.write(toFile: directory + "/lib.c", atomically: true, encoding: .utf8)
        let arguments = [compiler, "-shared", "-fPIC", "-O2", "-o", directory + "/lib.so", directory + "/lib.c"]
        let build = try Subprocess(arguments, stdin: .null, stdout: .pipe, stderr: .pipe)
        let (_, errors) = try build.communicate()
        XCTAssertEqual(try build.wait(), .exited(0), String(decoding: errors, as: UTF8.self))
        guard let library = dlopen(directory + "/lib.so", RTLD_NOW | RTLD_LOCAL) else {
            return XCTFail("dlopen: \(String(cValue: dlerror()))")
        }
        defer { dlclose(library) }
        typealias SleepThenSelect = @convention(c) () -> Int32
        typealias Read = @convention(c) (Int32, Int) -> Int
        typealias Poll = @convention(c) (Int32, Int32) -> Int32
        let sleepThenSelect = unsafeBitCast(dlsym(library, "lib_sleep_then_select"), to: SleepThenSelect.self)
        let read = unsafeBitCast(dlsym(library, "lib_read"), to: Read.self)
        let poll = unsafeBitCast(dlsym(library, "lib_poll"), to: Poll.self)

        PatchMode.enable()
        let start = monotonicNow()
        let callers = (0..<20).map { _ in spawn { sleepThenSelect() } }
        for c in callers { XCTAssertEqual(try c.get(), 0) }
        let elapsed = monotonicNow() - start
        XCTAssertGreaterThanOrEqual(elapsed, 1.45)
        XCTAssertLessThan(elapsed, 10, "20 calls of 1.5 s into the library overlapped (one after another: 30 s)")

        let (a, b) = try socketPair()
        defer { close(a); close(b) }
        setSocketTimeout(a, SO_RCVTIMEO, 5)   // libc's read would give up after 5 s
        let reading = spawn { read(a, 5) }
        let polling = spawn { poll(a, 2) }
        try letOthersRun()
        XCTAssertTrue(reading.isStarted && !reading.isReady && polling.isStarted && !polling.isReady)
        XCTAssertEqual(Glibc.send(b, "hello", 5, 0), 5)
        XCTAssertEqual(try polling.get(), 1)
        XCTAssertEqual(try reading.get(), 5)
    }
}

// MARK: - Helpers

/// Runs `body` in patch mode with the two ends of a new Unix socket
/// pair, closed afterwards.
private func withASocketPairInPatchMode(_ body: (_ a: Int32, _ b: Int32) throws -> Void) throws {
    PatchMode.enable()
    let (a, b) = try socketPair()
    defer { close(a); close(b) }
    try body(a, b)
}

private func socketPair() throws -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw TestError("socketpair") }
    return (fds[0], fds[1])
}

private func tcpPair() throws -> (client: Int32, server: Int32) {
    var fds: [Int32] = [-1, -1]
    let rc = patch_probe_tcp_pair(&fds)
    guard rc == 0 else { throw TestError("tcp pair: errno \(-rc)") }
    return (fds[0], fds[1])
}

/// A UDP socket bound to 127.0.0.1 (blocking), and its port.
private func udpSocket() throws -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw TestError("socket") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var size = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
    }
    guard bound == 0 else {
        close(fd)
        throw TestError("bind")
    }
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// Sends a byte on `fd` from another thread after `seconds`, unless `body`
/// returns first: bounds a test whose wait in C would block its thread for
/// ever if patch mode failed to cooperate (the wait then reports the byte).
private func withSafetyNet<R>(writingTo fd: Int32, after seconds: Double, _ body: () throws -> R) rethrows -> R {
    let done = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
    let thread = Thread {
        if done.wait(timeout: .now() + seconds) == .timedOut { _ = Glibc.send(fd, "!", 1, 0) }
        finished.signal()
    }
    thread.start()
    defer {
        done.signal()
        finished.wait()
    }
    return try body()
}

private func setSocketTimeout(_ fd: Int32, _ option: Int32, _ seconds: Double) {
    var t = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
    setsockopt(fd, SOL_SOCKET, option, &t, socklen_t(MemoryLayout<timeval>.size))
}

private func string(_ chars: [CChar], _ count: Int) -> String {
    String(decoding: chars.prefix(max(0, count)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func findOnPath(_ program: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(program)"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
}

extension String {
    fileprivate init(cValue: UnsafePointer<CChar>?) {
        self = cValue.map { String(cString: $0) } ?? ""
    }
}

/// What a wait in C returned: its result, errno, and which conditions it
/// reported for each fd (see patch_probe_wait).
private struct WaitOutcome: Equatable {
    var rc: Int32
    var error: Int32
    var ready: [Int32]
}

private struct WaitResult {
    var outcome: WaitOutcome
    /// select's timeval on return, in microseconds (-1 for the others).
    var leftUs: Int
}

/// The C calls that wait on several fds.
private enum WaitKind: Int32, CaseIterable, CustomStringConvertible {
    case select, pselect, poll, ppoll, epollWait, epollPwait, epollPwait2

    var description: String {
        ["select", "pselect", "poll", "ppoll", "epoll_wait", "epoll_pwait", "epoll_pwait2"][Int(rawValue)]
    }

    var isSelect: Bool { self == .select || self == .pselect }
    var isEpoll: Bool { rawValue >= WaitKind.epollWait.rawValue }

    /// The kinds this system has (epoll_pwait2 needs Linux 5.11).
    static var available: [WaitKind] {
        let pwait2 = WaitKind.epollPwait2.wait([], [], timeoutMs: 0).outcome.error != ENOSYS
        return allCases.filter { $0 != .epollPwait2 || pwait2 }
    }

    /// Waits in this call for `fds`: `what` 1 readable, 2 writable, 4 an
    /// exceptional condition; `timeoutMs` < 0 for no limit.
    func wait(_ fds: [Int32], _ what: [Int32], timeoutMs: Int) -> WaitResult {
        var ready = [Int32](repeating: -1, count: max(1, fds.count))
        var left = -1
        var error: Int32 = 0
        let rc = patch_probe_wait(rawValue, Int32(fds.count), fds, what, &ready, timeoutMs, &left, &error)
        return WaitResult(outcome: WaitOutcome(rc: rc, error: error, ready: Array(ready.prefix(fds.count))),
                          leftUs: left)
    }
}
