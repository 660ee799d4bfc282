import Green
import Synchronization
import XCTest
import GreenTestSupport

/// `HubHandle.run` hands its result over exactly once: a result that is
/// an object (or holds one) reaches the caller alive, and is released
/// once, when the caller lets it go.
final class HubHandleResultTests: GreenTestCase {
    private final class Tracked: Sendable {
        static let deinits = Atomic<Int>(0)
        let payload: [Int]
        init(_ n: Int) { payload = Array(0..<n) }
        deinit { Tracked.deinits.add(1, ordering: .relaxed) }
    }

    func testAnObjectResultOutlivesTheCall() throws {
        try withAHubThread(named: "result-owner") { handle in
            let before = Tracked.deinits.load(ordering: .relaxed)
            do {
                let result = try awaitAsync { () async throws -> Tracked in
                    try await handle.run { Tracked(1_000) }
                }
                XCTAssertEqual(Tracked.deinits.load(ordering: .relaxed), before, "the result was released while the caller holds it")
                XCTAssertEqual(result.payload.count, 1_000)
                XCTAssertEqual(result.payload.last, 999)
            }
            XCTAssertEqual(Tracked.deinits.load(ordering: .relaxed), before + 1)
        }
    }

    func testAHeapStringResultIsIntact() throws {
        try withAHubThread(named: "string-owner") { handle in
            for n in [100, 10_000] {
                let text = try awaitAsync { () async throws -> String in
                    try await handle.run { String(repeating: "green ", count: n) }
                }
                XCTAssertEqual(text, String(repeating: "green ", count: n))
            }
        }
    }
}
