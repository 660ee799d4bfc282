import Green
import XCTest
import GreenTestSupport

/// `withScope`: child greenlets whose lifetime is bounded by a block.
final class ScopeTests: VirtualTimeTestCase {
    func testWithScopeReturnsOnlyAfterAllChildrenFinished() throws {
        var finished: [Int] = []
        var children: [AnyGreenlet] = []
        let result = try withScope { scope -> String in
            for i in 0..<5 {
                children.append(scope.spawn {
                    for _ in 0..<i { try Green.sleep(0) }
                    if i == 4 { try Green.sleep(0.01) }
                    finished.append(i)
                })
            }
            return "body done"
        }
        XCTAssertEqual(result, "body done")
        XCTAssertEqual(finished.sorted(), [0, 1, 2, 3, 4])
        XCTAssertTrue(children.allSatisfy { $0.isReady })
    }

    func testTheFirstChildErrorCancelsTheSiblingsAndIsRethrown() throws {
        var defersRun: [String] = []
        var siblings: [AnyGreenlet] = []
        var failing: AnyGreenlet?
        XCTAssertThrowsError(try withScope { scope in
            for name in ["a", "b"] {
                siblings.append(scope.spawn {
                    defer { defersRun.append(name) }
                    try Green.sleep(10)
                })
            }
            failing = scope.spawn { () throws -> Int in
                try Green.sleep(0)
                throw TestError("child failed")
            }
        }) { XCTAssertEqual($0 as? TestError, TestError("child failed")) }
        XCTAssertEqual(defersRun.sorted(), ["a", "b"])
        for s in siblings {
            XCTAssertTrue(s.isReady)
            XCTAssertTrue(s.error is GreenletExit, "\(String(describing: s.error))")
        }
        XCTAssertEqual(failing?.error as? TestError, TestError("child failed"))
    }

    func testAChildErrorInterruptsTheBlockedBody() throws {
        let never = Event()
        var bodyReachedEnd = false
        XCTAssertThrowsError(try withScope { scope in
            scope.spawn { () throws -> Void in throw TestError("early") }
            try never.wait()
            bodyReachedEnd = true
        }) { XCTAssertEqual($0 as? TestError, TestError("early")) }
        XCTAssertFalse(bodyReachedEnd)
    }

    func testOnlyTheFirstChildErrorIsRethrown() throws {
        XCTAssertThrowsError(try withScope { scope in
            scope.spawn { () throws -> Void in throw TestError("first") }
            scope.spawn { () throws -> Void in try Green.sleep(0); throw TestError("second") }
        }) { XCTAssertEqual($0 as? TestError, TestError("first")) }
    }

    func testIfTheBodyThrowsTheChildrenAreKilledAndAwaited() throws {
        var defersRun = 0
        var children: [AnyGreenlet] = []
        XCTAssertThrowsError(try withScope { scope in
            for _ in 0..<3 {
                children.append(scope.spawn {
                    defer { defersRun += 1 }
                    try Green.sleep(10)
                })
            }
            try Green.sleep(0)
            throw TestError("body failed")
        }) { XCTAssertEqual($0 as? TestError, TestError("body failed")) }
        XCTAssertEqual(defersRun, 3)
        for c in children { XCTAssertTrue(c.error is GreenletExit) }
    }

    func testChildrenKilledBeforeTheyStartedNeverRun() throws {
        var ran = false
        XCTAssertThrowsError(try withScope { scope in
            scope.spawn { ran = true }
            throw TestError("body failed at once")
        }) { XCTAssertEqual($0 as? TestError, TestError("body failed at once")) }
        XCTAssertFalse(ran)
    }

    func testNothingOutlivesTheScope() throws {
        var scopeChildren: [AnyGreenlet] = []
        var kept: Scope?
        try withScope { scope in
            kept = scope
            // A child that spawns more children into the scope, late.
            scope.spawn {
                try Green.sleep(0)
                scope.spawn {
                    try Green.sleep(0.01)
                    scope.spawn { try Green.sleep(0) }
                }
            }
            scope.spawn { try Green.sleep(0) }
            scopeChildren = scope.greenlets
        }
        XCTAssertEqual(scopeChildren.count, 2)
        XCTAssertEqual(Hub.current.liveGreenlets, 0)
        // The two spawned late, by children, were awaited too.
        let all = kept?.greenlets ?? []
        XCTAssertEqual(all.count, 4)
        XCTAssertTrue(all.allSatisfy { $0.isReady })
    }

    func testAScopeKilledFromOutsideKillsAndAwaitsItsChildren() throws {
        var childDefers = 0
        let owner = spawn {
            try withScope { scope in
                for _ in 0..<3 {
                    scope.spawn {
                        defer { childDefers += 1 }
                        try Green.sleep(10)
                    }
                }
                try Green.sleep(10)
            }
        }
        try Green.sleep(0)
        try owner.kill()
        XCTAssertTrue(owner.error is GreenletExit)
        XCTAssertEqual(childDefers, 3)
    }

    func testAChildKilledByItselfOrOthersDoesNotFailTheScope() throws {
        let r = try withScope { scope -> Int in
            let victim = scope.spawn { try Green.sleep(10) }
            scope.spawn { try victim.kill() }
            return 1
        }
        XCTAssertEqual(r, 1)
    }

    func testAScopeWaitsForChildrenEvenWhenTheBodyReturnsAtOnce() throws {
        var values: [Int] = []
        try withScope { scope in
            for i in 0..<3 { scope.spawn { try Green.sleep(0.005); values.append(i) } }
        }
        XCTAssertEqual(values.count, 3)
    }

    func testAChildErrorIsHeldByAShieldInsideTheBody() throws {
        // The scope's cancellation comes from outside a shield the body
        // opened, like a timeout started before it: held until it ends.
        let release = Event()
        var shieldCompleted = false
        XCTAssertThrowsError(try withScope { scope in
            scope.spawn { () throws -> Void in
                try Green.sleep(0)
                defer { release.set() }
                throw TestError("child")
            }
            try shielded {
                try release.wait()
                try Green.sleep(0)
                shieldCompleted = true
            }
        }) { XCTAssertEqual($0 as? TestError, TestError("child")) }
        XCTAssertTrue(shieldCompleted)
    }
}
