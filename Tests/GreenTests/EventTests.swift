import Green
import XCTest
import GreenTestSupport

/// `Event`, the flag most of the other tests wait on.
final class EventTests: VirtualTimeTestCase {
    func testSetWakesEveryWaiterInTheOrderTheyStartedWaiting() throws {
        let e = Event()
        var order: [Int] = []
        let gs = (0..<5).map { i in spawn { try e.wait(); order.append(i) } }
        try Green.sleep(0)
        XCTAssertEqual(order, [])
        e.set()
        try joinAll(gs)
        XCTAssertEqual(order, [0, 1, 2, 3, 4])
    }

    func testWaitOnASetEventReturnsAtOnce() throws {
        let e = Event()
        e.set()
        XCTAssertTrue(e.isSet)
        XCTAssertTrue(try e.wait())
        XCTAssertTrue(try e.wait(timeout: 0))
    }

    func testWaitWithTimeoutReturnsFalseWhenNotSet() throws {
        let e = Event()
        XCTAssertFalse(try e.wait(timeout: 0.01))
        XCTAssertFalse(e.isSet)
    }

    func testAWaiterReleasedBySetReturnsEvenIfClearedBeforeItRan() throws {
        let e = Event()
        var returned = false
        let g = spawn { try e.wait(); returned = true }
        try Green.sleep(0)
        e.set()
        e.clear()
        try g.join()
        XCTAssertTrue(returned)
        XCTAssertFalse(e.isSet)
    }

    func testClearMakesLaterWaitersBlock() throws {
        let e = Event()
        e.set()
        e.clear()
        let g = spawn { () throws -> Bool in try e.wait(timeout: 0.01) }
        XCTAssertEqual(try g.get(), false)
    }

    func testAKilledWaiterLeavesTheEventUsable() throws {
        let e = Event()
        try checkAKilledWaiterGetsNothing(killBlocking: true, wait: { _ in try e.wait() }) { e.set() }
    }
}
