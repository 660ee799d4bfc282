import Foundation
import Glibc
import Green
import XCTest
import GreenTestSupport

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
