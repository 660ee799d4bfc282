import Foundation
import Glibc
import Green
import XCTest
import GreenTestSupport

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
