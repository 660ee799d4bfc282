import Foundation
import Glibc
import Green
import XCTest
import GreenTestSupport

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
