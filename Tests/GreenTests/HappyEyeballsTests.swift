import Foundation
import Glibc
import Green
import XCTest
import GreenTestSupport

/// RFC 8305 connection racing (`Socket.connect(addresses:)`), on loopback.
/// An address that never answers is a listener whose accept queue is full
/// (backlog 0 and one connection queued): the kernel drops further SYNs,
/// so a connect to it waits until its timeout.
final class HappyEyeballsTests: GreenTestCase {
    private func openFDs() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }

    /// A listener on `ip` that never answers another SYN, and the socket
    /// that fills its queue (keep both open).
    private func blackHole(_ ip: String) throws -> (listener: Socket, filler: Socket) {
        let l = try Socket.listen(on: SocketAddress(ip: ip, port: 0), backlog: 0)
        let filler = try Socket(family: l.family)
        try filler.connect(to: l.localAddress!, timeout: 5)
        return (l, filler)
    }

    private func ipv6Listener() throws -> Socket {
        do {
            return try Socket.listen(on: SocketAddress(ip: "::1", port: 0))
        } catch let e as SocketError where e.errno == EADDRNOTAVAIL || e.errno == EAFNOSUPPORT {
            throw XCTSkip("no IPv6 loopback here: \(e)")
        }
    }

    func testFamiliesAreInterleavedKeepingEachFamilysOrder() throws {
        let a6 = try SocketAddress(ip: "::1", port: 1), b6 = try SocketAddress(ip: "::2", port: 1)
        let c6 = try SocketAddress(ip: "::3", port: 1)
        let a4 = try SocketAddress(ip: "127.0.0.1", port: 1), b4 = try SocketAddress(ip: "127.0.0.2", port: 1)
        XCTAssertEqual(Socket.interleavedByFamily([a6, b6, c6, a4, b4]), [a6, a4, b6, b4, c6])
        XCTAssertEqual(Socket.interleavedByFamily([a4, b4, a6]), [a4, a6, b4])
        XCTAssertEqual(Socket.interleavedByFamily([a4, b4]), [a4, b4])
        XCTAssertEqual(Socket.interleavedByFamily([]), [])
    }

    /// The preferred (first) address never answers: the second family's
    /// attempt starts after the attempt delay and wins, long before the
    /// first attempt's own timeout; the losing socket is closed.
    func testAnAddressThatNeverAnswersCostsTheAttemptDelayNotTheTimeout() throws {
        let (hole, filler) = try blackHole("::1")
        defer { hole.close(); filler.close() }
        let good = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { good.close() }
        let before = openFDs()
        let started = Hub.current.nowUpdated()
        let s = try Socket.connect(addresses: [hole.localAddress!, good.localAddress!], attemptDelay: 0.05, timeout: 30)
        let took = Hub.current.nowUpdated() - started
        XCTAssertEqual(s.peerAddress, good.localAddress)
        // Not a timing assertion on speed: the attempt to the silent
        // address would otherwise have waited out the 30 s timeout.
        XCTAssertLessThan(took, 25, "the racing attempt did not start")
        let (accepted, _) = try good.accept(timeout: 5)
        accepted.close()
        s.close()
        XCTAssertEqual(openFDs(), before, "the losing attempt's socket was not closed")
    }

    /// A refused address fails at once and the next one starts without
    /// waiting for the delay (a delay of 2 s would show as a timeout here).
    func testARefusedAttemptStartsTheNextAtOnce() throws {
        let closed = try refusingSocket()
        defer { closed.close() }
        let refused = closed.localAddress!
        let good = try ipv6Listener()
        defer { good.close() }
        let s = try withTimeout(1.5) {
            try Socket.connect(addresses: [refused, good.localAddress!], attemptDelay: 2, timeout: 30)
        }
        defer { s.close() }
        XCTAssertEqual(s.peerAddress, good.localAddress)
    }

    func testEveryAddressFailingThrowsTheLastErrorNamingItsAddress() throws {
        let a = try refusingSocket()
        defer { a.close() }
        try ipv6Listener().close()
        let b = try refusingSocket("::1")
        defer { b.close() }
        let addresses = [a.localAddress!, b.localAddress!]
        let before = openFDs()
        XCTAssertThrowsError(try Socket.connect(addresses: addresses, attemptDelay: 0.05, timeout: 10)) { error in
            guard let e = error as? SocketError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.errno, ECONNREFUSED)
            XCTAssertTrue("\(e)".contains("::1"), "\(e)")
        }
        XCTAssertEqual(openFDs(), before)
    }

    /// Every address silent: the overall timeout ends it, every socket closed.
    func testTheTimeoutEndsAttemptsThatNeverAnswer() throws {
        let (h4, f4) = try blackHole("127.0.0.1")
        defer { h4.close(); f4.close() }
        _ = try ipv6Listener().close()
        let (h6, f6) = try blackHole("::1")
        defer { h6.close(); f6.close() }
        let before = openFDs()
        XCTAssertThrowsError(try Socket.connect(addresses: [h6.localAddress!, h4.localAddress!], attemptDelay: 0.01,
                                                timeout: 0.2)) { error in
            guard let e = error as? SocketError, case .timedOut = e.reason else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(openFDs(), before)
    }

    /// A kill while attempts are pending closes their sockets.
    func testAKillWhileConnectingClosesEveryAttempt() throws {
        let (h4, f4) = try blackHole("127.0.0.1")
        defer { h4.close(); f4.close() }
        let (h6, f6) = try blackHole("::1")
        defer { h6.close(); f6.close() }
        let before = openFDs()
        let connecting = Green.Event()
        let g = spawn { () throws -> Void in
            connecting.set()
            _ = try Socket.connect(addresses: [h6.localAddress!, h4.localAddress!], attemptDelay: 0.01)
        }
        XCTAssertTrue(try connecting.wait(timeout: 5))
        try g.kill(timeout: 5)
        XCTAssertEqual(openFDs(), before)
    }
}
