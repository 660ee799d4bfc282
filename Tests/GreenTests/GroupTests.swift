import Green
import XCTest
import GreenTestSupport

/// `Group`: an unbounded set of greenlets spawned, joined and killed
/// together. A member leaves the group when it finishes.
final class GroupTests: GreenTestCase {
    func testSpawnAddsAMemberThatLeavesWhenItFinishes() throws {
        let group = Group()
        let release = Event()
        let g = try group.spawn(name: "member") { () throws -> Int in try release.wait(); return 7 }
        XCTAssertEqual(group.count, 1)
        XCTAssertTrue(group.contains(g))
        XCTAssertTrue(group.greenlets.contains { $0 === g })
        release.set()
        XCTAssertEqual(try withTimeout(5) { try g.get() }, 7)
        XCTAssertEqual(group.count, 0)
        XCTAssertFalse(group.contains(g))
        XCTAssertTrue(group.greenlets.isEmpty)
    }

    func testJoinWaitsForEveryMember() throws {
        let group = Group()
        var finished: [Int] = []
        let members = try (0..<5).map { i in
            try group.spawn {
                for _ in 0..<(5 - i) { try Green.sleep(0) }
                finished.append(i)
            }
        }
        XCTAssertEqual(group.count, 5)
        XCTAssertTrue(try withTimeout(5) { try group.join() })
        XCTAssertEqual(finished.sorted(), [0, 1, 2, 3, 4])
        XCTAssertTrue(members.allSatisfy { $0.isReady })
        XCTAssertEqual(group.count, 0)
    }

    func testJoinOnAnEmptyGroupReturnsTrueAtOnce() throws {
        XCTAssertTrue(try Group().join())
        XCTAssertTrue(try Group().join(timeout: 0))
    }

    func testJoinWithATimeoutReturnsFalseWhileMembersAreStillRunning() throws {
        let group = Group()
        let release = Event()
        let member = try group.spawn { try release.wait() }
        defer { release.set(); _ = try? withTimeout(5) { try group.join() } }
        XCTAssertFalse(try withTimeout(5) { try group.join(timeout: 0.01) })
        XCTAssertFalse(member.isReady)
        XCTAssertEqual(group.count, 1)
        release.set()
        XCTAssertTrue(try withTimeout(5) { try group.join(timeout: 5) })
        XCTAssertTrue(member.isSuccessful)
    }

    func testJoinRaisingErrorsThrowsTheFirstMemberErrorWithoutWaitingForTheRest() throws {
        let group = Group()
        let never = Event()
        var blockedEnded = false
        let blocked = try group.spawn {
            defer { blockedEnded = true }
            try never.wait()
        }
        let failing = try group.spawn { () throws -> Void in
            try Green.sleep(0)
            throw TestError("member failed")
        }
        defer { _ = try? withTimeout(5) { try group.kill() } }
        XCTAssertThrowsError(try withTimeout(5) { try group.join(raiseError: true) }) {
            XCTAssertEqual($0 as? TestError, TestError("member failed"))
        }
        XCTAssertTrue(failing.isReady)
        XCTAssertFalse(blocked.isReady, "join returned on the error, not after every member")
        XCTAssertFalse(blockedEnded)
        try withTimeout(5) { try group.kill() }
        XCTAssertTrue(blockedEnded)
    }

    func testJoinRaisingErrorsDoesNotCountAKilledMemberAsAnError() throws {
        let group = Group()
        let never = Event()
        let victim = try group.spawn { try never.wait() }
        let ok = try group.spawn { () throws -> Int in
            try Green.sleep(0)
            try victim.kill()
            return 1
        }
        XCTAssertTrue(try withTimeout(5) { try group.join(raiseError: true) })
        XCTAssertTrue(victim.error is GreenletExit)
        XCTAssertTrue(ok.isSuccessful)
    }

    func testJoinWithoutRaisingErrorsWaitsThroughAMemberError() throws {
        let group = Group()
        let failing = try group.spawn { () throws -> Void in throw TestError("quiet") }
        let ok = try group.spawn { () throws -> Int in try Green.sleep(0); return 1 }
        XCTAssertTrue(try withTimeout(5) { try group.join() })
        XCTAssertEqual(failing.error as? TestError, TestError("quiet"))
        XCTAssertTrue(ok.isSuccessful)
    }

    func testKillKillsEveryMemberAndTheirDefersRun() throws {
        let group = Group()
        let never = Event()
        var defersRun: [Int] = []
        let members = try (0..<4).map { i in
            try group.spawn {
                defer { defersRun.append(i) }
                try never.wait()
            }
        }
        try Green.sleep(0)
        XCTAssertTrue(members.allSatisfy { $0.isStarted })
        try withTimeout(5) { try group.kill() }
        XCTAssertEqual(defersRun.sorted(), [0, 1, 2, 3])
        for m in members { XCTAssertTrue(m.error is GreenletExit, "\(String(describing: m.error))") }
        XCTAssertEqual(group.count, 0)
    }

    func testKillWithACustomErrorDeliversThatError() throws {
        let group = Group()
        let never = Event()
        let member = try group.spawn { try never.wait() }
        try Green.sleep(0)
        try withTimeout(5) { try group.kill(TestError("stop")) }
        XCTAssertEqual(member.error as? TestError, TestError("stop"))
    }

    func testAMemberCallingKillOnItsGroupSparesItself() throws {
        let group = Group()
        let (others, defersRun) = try spawnMembersWaitingForever(3, in: group)
        let killer = try group.spawn { () throws -> String in
            try Green.sleep(0)
            try group.kill()
            // Still running, and still a member until it returns.
            XCTAssertTrue(group.contains(AnyGreenlet.current))
            XCTAssertEqual(group.count, 1)
            try Green.sleep(0)
            return "survived"
        }
        XCTAssertEqual(try withTimeout(5) { try killer.get() }, "survived")
        XCTAssertEqual(defersRun(), 3)
        for g in others { XCTAssertTrue(g.error is GreenletExit) }
        XCTAssertEqual(group.count, 0)
    }

    func testAddTracksAGreenletSpawnedElsewhere() throws {
        let group = Group()
        let release = Event()
        let g = spawn { () throws -> Int in try release.wait(); return 3 }
        try group.add(g)
        XCTAssertEqual(group.count, 1)
        XCTAssertTrue(group.contains(g))
        // Adding it twice changes nothing.
        try group.add(g)
        XCTAssertEqual(group.count, 1)
        release.set()
        XCTAssertTrue(try withTimeout(5) { try group.join() })
        XCTAssertTrue(g.isReady, "join waited for the added greenlet")
        XCTAssertEqual(g.value, 3)
        XCTAssertEqual(group.count, 0)
    }

    func testAnAddedGreenletIsKilledWithTheGroup() throws {
        let group = Group()
        let never = Event()
        var ended = false
        let g = spawn {
            defer { ended = true }
            try never.wait()
        }
        try group.add(g)
        try Green.sleep(0)
        try withTimeout(5) { try group.kill() }
        XCTAssertTrue(ended)
        XCTAssertTrue(g.error is GreenletExit)
    }

    func testAddingAFinishedGreenletDoesNothing() throws {
        let group = Group()
        let g = spawn { 1 }
        _ = try withTimeout(5) { try g.join() }
        try group.add(g)
        XCTAssertEqual(group.count, 0)
        XCTAssertFalse(group.contains(g))
        XCTAssertTrue(try group.join(timeout: 0))
    }

    func testDiscardRemovesAMemberWithoutTouchingIt() throws {
        let group = Group()
        let release = Event()
        let g = try group.spawn { () throws -> Int in try release.wait(); return 5 }
        defer { release.set(); _ = try? withTimeout(5) { try g.join() } }
        try Green.sleep(0)
        group.discard(g)
        XCTAssertEqual(group.count, 0)
        XCTAssertFalse(group.contains(g))
        // Nothing left to wait for; the greenlet itself runs on.
        XCTAssertTrue(try withTimeout(5) { try group.join(timeout: 0) })
        XCTAssertFalse(g.isReady)
        try withTimeout(5) { try group.kill() }
        XCTAssertFalse(g.isReady, "kill reached a discarded greenlet")
        release.set()
        XCTAssertEqual(try withTimeout(5) { try g.get() }, 5)
        // Discarding something that is not a member changes nothing.
        group.discard(g)
        XCTAssertEqual(group.count, 0)
    }

    func testJoinCalledFromAMemberThrowsJoinFromMember() throws {
        let group = Group()
        let release = Event()
        let other = try group.spawn { try release.wait() }
        let member = try group.spawn(name: "self-joiner") { () throws -> Void in
            try group.join()
        }
        defer { release.set(); _ = try? withTimeout(5) { try group.join() } }
        XCTAssertThrowsError(try withTimeout(5) { try member.get() }) { error in
            guard case PoolError.joinFromMember(let name) = error else {
                return XCTFail("expected PoolError.joinFromMember, got \(error)")
            }
            XCTAssertEqual(name, "self-joiner")
        }
        XCTAssertFalse(other.isReady)
        release.set()
        XCTAssertTrue(try withTimeout(5) { try group.join() })
    }

    func testJoinIsWokenWhenTheLastMemberIsDiscarded() throws {
        let group = Group()
        let release = Event()
        let g = try group.spawn { try release.wait() }
        let discarder = spawn { group.discard(g) }
        XCTAssertTrue(try withTimeout(5) { try group.join() })
        XCTAssertFalse(g.isReady)
        release.set()
        _ = try withTimeout(5) { try joinAll([g, discarder]) }
    }

    func testAGroupIsNeverFull() throws {
        let group = Group()
        XCTAssertEqual(group.freeCount, Int.max)
        XCTAssertTrue(try group.waitAvailable(timeout: 0))
        let never = Event()
        _ = try (0..<50).map { _ in try group.spawn { try never.wait() } }
        XCTAssertEqual(group.count, 50)
        XCTAssertTrue(try group.waitAvailable(timeout: 0))
        try withTimeout(5) { try group.kill() }
        XCTAssertEqual(group.count, 0)
    }
}
