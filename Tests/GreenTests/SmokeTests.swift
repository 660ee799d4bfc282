import Green
import XCTest

final class SmokeTests: XCTestCase {
    func testSpawnAndGet() throws {
        let g = spawn { 40 + 2 }
        XCTAssertEqual(try g.get(), 42)
    }

    func testSleepersInterleave() throws {
        var order: [Int] = []
        let a = spawn { try Green.sleep(0.02); order.append(2) }
        let b = spawn { try Green.sleep(0.01); order.append(1) }
        try joinAll([a, b])
        XCTAssertEqual(order, [1, 2])
    }

    func testKillDuringSleepRunsDefer() throws {
        var deferred = false
        let g = spawn { defer { deferred = true }; try Green.sleep(10) }
        try Green.sleep(0)
        try g.kill()
        XCTAssertTrue(deferred)
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testTimeout() throws {
        XCTAssertThrowsError(try withTimeout(0.01) { try Green.sleep(5) }) { XCTAssertTrue($0 is TimeoutError) }
    }

    func testManySpawns() throws {
        var n = 0
        for _ in 0..<10 {
            let gs = (0..<1000).map { _ in spawn { n += 1 } as AnyGreenlet }
            try joinAll(gs)
        }
        XCTAssertEqual(n, 10000)
    }
}
