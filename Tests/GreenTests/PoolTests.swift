import Foundation
import Green
import Synchronization
import XCTest
import GreenTestSupport

/// `Pool(size:)`: a group of at most `size` greenlets. `spawn` waits while
/// the pool is full, and a freed slot goes to the first waiting spawner.
final class PoolTests: GreenTestCase {
    // MARK: - Bounding

    func testNeverMoreThanSizeMembersRunAtOnce() throws {
        let pool = Pool(size: 3)
        var running = 0
        var maxRunning = 0
        var finished = 0
        let allIn = Event()
        for _ in 0..<12 {
            _ = try withTimeout(5) {
                try pool.spawn {
                    running += 1
                    maxRunning = max(maxRunning, running)
                    defer {
                        running -= 1
                        finished += 1
                    }
                    if running == 3 { allIn.set() }
                    try allIn.wait()
                    try Green.sleep(0)
                }
            }
            XCTAssertLessThanOrEqual(pool.count, 3)
        }
        XCTAssertTrue(try withTimeout(5) { try pool.join() })
        XCTAssertEqual(finished, 12)
        XCTAssertEqual(maxRunning, 3)
        XCTAssertEqual(pool.freeCount, 3)
    }

    func testSpawnWaitsWhileThePoolIsFullAndProceedsWhenAMemberFinishes() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, release, members in
            let first = members[0]
            var secondSpawned = false
            var secondRan = false
            let spawner = spawn { () throws -> Void in
                try pool.spawn { secondRan = true }
                secondSpawned = true
            }
            defer { cleanUp([spawner]) }
            try Green.sleep(0)
            XCTAssertTrue(spawner.isStarted)
            XCTAssertFalse(secondSpawned, "spawn did not wait for the full pool")
            XCTAssertEqual(pool.count, 1)
            XCTAssertTrue(pool.isFull)
            release.set()
            _ = try withTimeout(5) { try spawner.join() }
            XCTAssertTrue(first.isSuccessful)
            XCTAssertTrue(secondSpawned)
            XCTAssertTrue(try withTimeout(5) { try pool.join() })
            XCTAssertTrue(secondRan)
            XCTAssertEqual(pool.freeCount, 1)
        }
    }

    func testWaitingSpawnersAreServedFirstComeFirstServed() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, release, _ in
            var granted: [Int] = []
            var ran: [Int] = []
            // Arrival order unlike the numbering.
            let arrival = [2, 0, 3, 1]
            let spawners = arrival.map { i in
                spawn(name: "spawner-\(i)") { () throws -> Void in
                    try pool.spawn {
                        ran.append(i)
                        try Green.sleep(0)
                    }
                    granted.append(i)
                }
            }
            defer { cleanUp(spawners) }
            try Green.sleep(0)
            XCTAssertEqual(granted, [])
            release.set()
            _ = try withTimeout(5) { try joinAll(spawners) }
            XCTAssertTrue(try withTimeout(5) { try pool.join() })
            XCTAssertEqual(granted, arrival)
            XCTAssertEqual(ran, arrival)
        }
    }

    func testSpawnNowaitThrowsPoolFullWhenThePoolIsFull() throws {
        let pool = Pool(size: 2)
        let release = Event()
        try pool.spawnNowait { try release.wait() }
        try pool.spawnNowait { try release.wait() }
        defer { release.set(); _ = try? withTimeout(5) { try pool.join() } }
        var extraRan = false
        XCTAssertThrowsError(try pool.spawnNowait { extraRan = true }) { error in
            XCTAssertEqual((error as? PoolFull)?.size, 2, "\(error)")
        }
        XCTAssertEqual(pool.count, 2)
        release.set()
        XCTAssertTrue(try withTimeout(5) { try pool.join() })
        XCTAssertFalse(extraRan)
        XCTAssertEqual(pool.freeCount, 2)
        // Free again: spawnNowait goes through.
        let g = try pool.spawnNowait { 9 }
        XCTAssertEqual(try withTimeout(5) { try g.get() }, 9)
    }

    func testSpawnWithATimeoutThrowsPoolFullWhenNoSlotFreesInTime() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, release, _ in
            var lateRan = false
            XCTAssertThrowsError(try withTimeout(5) { try pool.spawn(timeout: 0.01) { lateRan = true } }) { error in
                XCTAssertEqual((error as? PoolFull)?.size, 1, "\(error)")
            }
            try checkTheRefusedSpawnLeftNoTrace(in: pool, release: release, ran: lateRan)
        }
    }

    func testSpawnWithATimeoutSpawnsWhenASlotFreesInTime() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, release, _ in
            let releaser = spawn { release.set() }
            defer { cleanUp([releaser]) }
            let g = try withTimeout(5) { try pool.spawn(timeout: 5) { "in" } }
            XCTAssertEqual(try withTimeout(5) { try g.get() }, "in")
            _ = try withTimeout(5) { try releaser.join() }
            XCTAssertTrue(try withTimeout(5) { try pool.join() })
        }
    }

    func testFreeCountAndIsFullFollowTheMembers() throws {
        let pool = Pool(size: 3)
        XCTAssertEqual(pool.size, 3)
        XCTAssertEqual(pool.freeCount, 3)
        XCTAssertFalse(pool.isFull)
        let releases = (0..<3).map { _ in Event() }
        var members: [AnyGreenlet] = []
        for (i, r) in releases.enumerated() {
            members.append(try pool.spawn { try r.wait() })
            XCTAssertEqual(pool.freeCount, 2 - i)
            XCTAssertEqual(pool.count, i + 1)
        }
        defer { for r in releases { r.set() }; _ = try? withTimeout(5) { try pool.join() } }
        XCTAssertTrue(pool.isFull)
        releases[1].set()
        _ = try withTimeout(5) { try members[1].join() }
        XCTAssertEqual(pool.freeCount, 1)
        XCTAssertFalse(pool.isFull)
        XCTAssertEqual(pool.count, 2)
        releases[0].set()
        releases[2].set()
        XCTAssertTrue(try withTimeout(5) { try pool.join() })
        XCTAssertEqual(pool.freeCount, 3)
        XCTAssertFalse(pool.isFull)
        XCTAssertEqual(pool.count, 0)
    }

    func testASpawnedButNotYetStartedMemberHoldsASlot() throws {
        let pool = Pool(size: 2)
        let g = try pool.spawn { 1 }
        XCTAssertFalse(g.isStarted)
        XCTAssertEqual(pool.freeCount, 1)
        XCTAssertEqual(try withTimeout(5) { try g.get() }, 1)
        XCTAssertEqual(pool.freeCount, 2)
    }

    // MARK: - waitAvailable

    func testWaitAvailableReturnsAtOnceWhenASlotIsFree() throws {
        let pool = Pool(size: 1)
        XCTAssertTrue(try pool.waitAvailable())
        XCTAssertTrue(try pool.waitAvailable(timeout: 0))
        XCTAssertEqual(pool.freeCount, 1)
    }

    func testWaitAvailableWaitsForASlotToFreeAndDoesNotTakeIt() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, release, members in
            let member = members[0]
            var result: Bool?
            var freeAfter = -1
            let waiter = spawn { () throws -> Void in
                result = try pool.waitAvailable()
                freeAfter = pool.freeCount
            }
            defer { cleanUp([waiter]) }
            try Green.sleep(0)
            XCTAssertTrue(waiter.isStarted)
            XCTAssertNil(result, "waitAvailable returned while the pool was full")
            release.set()
            _ = try withTimeout(5) { try waiter.join() }
            XCTAssertTrue(member.isReady)
            XCTAssertEqual(result, true)
            XCTAssertEqual(freeAfter, 1)
            assertEverySlotIsFree(pool)
            // The slot is still there: spawnNowait does not throw.
            let g = try pool.spawnNowait { 2 }
            XCTAssertEqual(try withTimeout(5) { try g.get() }, 2)
        }
    }

    func testWaitAvailableWithATimeoutReturnsFalseWhenNothingFrees() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, release, _ in
            XCTAssertFalse(try withTimeout(5) { try pool.waitAvailable(timeout: 0.01) })
            XCTAssertTrue(pool.isFull)
            release.set()
            XCTAssertTrue(try withTimeout(5) { try pool.join() })
        }
    }

    func testAFreedSlotGoesToAWaitingSpawnerBeforeWaitAvailable() throws {
        let pool = Pool(size: 1)
        let releaseFirst = Event()
        let releaseSecond = Event()
        try pool.spawn { try releaseFirst.wait() }
        var available: Bool?
        let spawner = spawn { () throws -> Void in
            try pool.spawn { try releaseSecond.wait() }
        }
        let waiter = spawn { () throws -> Void in available = try pool.waitAvailable() }
        defer {
            releaseFirst.set()
            releaseSecond.set()
            _ = try? withTimeout(5) { try joinAll([spawner, waiter]); try pool.join() }
        }
        try Green.sleep(0)
        releaseFirst.set()
        _ = try withTimeout(5) { try spawner.join() }
        XCTAssertTrue(pool.isFull)
        try Green.sleep(0)
        XCTAssertNil(available, "waitAvailable returned while the slot went to the spawner")
        releaseSecond.set()
        _ = try withTimeout(5) { try waiter.join() }
        XCTAssertEqual(available, true)
        XCTAssertTrue(try withTimeout(5) { try pool.join() })
        XCTAssertEqual(pool.freeCount, 1)
    }

    // MARK: - Leaving the line, killing

    func testASpawnerKilledWhileWaitingForASlotTakesAndLeaksNone() throws {
        try whileMembersWait(inAPoolOf: 2, count: 2) { pool, release, _ in
            var ran = false
            let spawner = spawn { () throws -> Void in try pool.spawn { ran = true } }
            defer { cleanUp([spawner]) }
            try Green.sleep(0)
            XCTAssertTrue(spawner.isStarted)
            try withTimeout(5) { try spawner.kill() }
            XCTAssertTrue(spawner.error is GreenletExit, "\(String(describing: spawner.error))")
            try checkTheRefusedSpawnLeftNoTrace(in: pool, release: release, ran: ran)
        }
    }

    func testTheSlotSkipsAKilledSpawnerAndGoesToTheNextInLine() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, release, _ in
            var ran: [String] = []
            let a = spawn(name: "a") { () throws -> Void in try pool.spawn { ran.append("a") } }
            let b = spawn(name: "b") { () throws -> Void in try pool.spawn { ran.append("b") } }
            defer { cleanUp([a, b]) }
            try Green.sleep(0)
            try withTimeout(5) { try a.kill() }
            release.set()
            _ = try withTimeout(5) { try b.join() }
            XCTAssertTrue(b.isSuccessful)
            XCTAssertTrue(try withTimeout(5) { try pool.join() })
            XCTAssertEqual(ran, ["b"])
            XCTAssertEqual(pool.freeCount, 1)
        }
    }

    func testASpawnerWhoseTimeoutExpiredLeavesTheLine() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, release, _ in
            XCTAssertThrowsError(try withTimeout(5) { try pool.spawn(timeout: 0.01) { "late" } }) {
                XCTAssertTrue($0 is PoolFull, "\($0)")
            }
            var second = false
            let spawner = spawn { () throws -> Void in
                try pool.spawn { second = true }
            }
            try Green.sleep(0)
            release.set()
            _ = try withTimeout(5) { try spawner.join() }
            XCTAssertTrue(try withTimeout(5) { try pool.join() })
            XCTAssertTrue(second)
            XCTAssertEqual(pool.freeCount, 1)
        }
    }

    func testKillWhileMembersRunFreesEverySlot() throws {
        let pool = Pool(size: 3)
        let (members, defersRun) = try spawnMembersWaitingForever(3, in: pool)
        try Green.sleep(0)
        XCTAssertTrue(pool.isFull)
        try withTimeout(5) { try pool.kill() }
        XCTAssertEqual(defersRun(), 3)
        XCTAssertTrue(members.allSatisfy { $0.error is GreenletExit })
        assertEverySlotIsFree(pool)
        XCTAssertFalse(pool.isFull)
    }

    func testDiscardFreesTheMembersSlot() throws {
        let pool = Pool(size: 1)
        let release = Event()
        let g = try pool.spawn { try release.wait() }
        defer { release.set(); _ = try? withTimeout(5) { try g.join() } }
        XCTAssertTrue(pool.isFull)
        pool.discard(g)
        XCTAssertEqual(pool.freeCount, 1)
        let other = try pool.spawnNowait { 4 }
        XCTAssertEqual(try withTimeout(5) { try other.get() }, 4)
        release.set()
        _ = try withTimeout(5) { try g.join() }
        // The discarded greenlet's end frees nothing a second time.
        XCTAssertEqual(pool.freeCount, 1)
    }

    func testAddingToAFullPoolWaitsForASlot() throws {
        let pool = Pool(size: 1)
        let releaseMember = Event()
        let releaseAdded = Event()
        try pool.spawn { try releaseMember.wait() }
        let outsider = spawn { try releaseAdded.wait() }
        var added = false
        let adder = spawn { () throws -> Void in
            try pool.add(outsider)
            added = true
        }
        defer {
            releaseMember.set()
            releaseAdded.set()
            _ = try? withTimeout(5) { try joinAll([adder, outsider]); try pool.join() }
        }
        try Green.sleep(0)
        XCTAssertFalse(added)
        XCTAssertFalse(pool.contains(outsider))
        releaseMember.set()
        _ = try withTimeout(5) { try adder.join() }
        XCTAssertTrue(added)
        XCTAssertTrue(pool.contains(outsider))
        XCTAssertTrue(pool.isFull)
        releaseAdded.set()
        XCTAssertTrue(try withTimeout(5) { try pool.join() })
        XCTAssertEqual(pool.freeCount, 1)
    }

    // MARK: - A member spawning into its own full pool

    func testSpawningIntoItsOwnFullPoolIsReportedToPoolJoinInsteadOfHanging() {
        let problems = runOnOwnThread { problems in
            let pool = Pool(size: 1)
            var innerRan = false
            let member: AnyGreenlet
            do {
                member = try pool.spawn(name: "member") { () throws -> Void in
                    try pool.spawn(name: "inner") { innerRan = true }
                }
            } catch {
                problems.append("spawning the member threw \(error)")
                return
            }
            do {
                try pool.join()
                problems.append("pool.join() returned")
            } catch GreenError.wouldBlockForever(let waitingOn, let parked) {
                if waitingOn != "Group.join" { problems.append("waitingOn is \(waitingOn)") }
                let expected = "member in Pool.spawn (the pool is full and the caller is one of its greenlets)"
                if parked != [expected] { problems.append("parked is \(parked)") }
            } catch {
                problems.append("pool.join() threw \(error), not wouldBlockForever")
            }
            killAll(of: pool, noting: &problems)
            if !(member.error is GreenletExit) { problems.append("member ended with \(String(describing: member.error))") }
            if innerRan { problems.append("the inner spawn ran") }
            if pool.freeCount != 1 { problems.append("freeCount is \(pool.freeCount) after the kill") }
            if pool.count != 0 { problems.append("count is \(pool.count) after the kill") }
        }
        XCTAssertEqual(problems, [])
    }

    func testSpawningIntoItsOwnFullPoolIsReportedToAJoinOnTheMember() {
        let problems = runOnOwnThread { problems in
            let pool = Pool(size: 2)
            let members: [AnyGreenlet]
            do {
                members = try (0..<2).map { i in
                    try pool.spawn(name: "m\(i)") { () throws -> Void in
                        try pool.spawn(name: "inner-\(i)") {}
                    }
                }
            } catch {
                problems.append("spawning the members threw \(error)")
                return
            }
            do {
                try members[0].join()
                problems.append("join returned")
            } catch GreenError.wouldBlockForever(let waitingOn, let parked) {
                if waitingOn != "join" { problems.append("waitingOn is \(waitingOn)") }
                let what = "Pool.spawn (the pool is full and the caller is one of its greenlets)"
                if Set(parked) != ["m0 in \(what)", "m1 in \(what)"] { problems.append("parked is \(parked)") }
            } catch {
                problems.append("join threw \(error), not wouldBlockForever")
            }
            killAll(of: pool, noting: &problems)
            if !members.allSatisfy({ $0.error is GreenletExit }) { problems.append("a member was not killed") }
            if pool.freeCount != 2 { problems.append("freeCount is \(pool.freeCount) after the kill") }
        }
        XCTAssertEqual(problems, [])
    }

    func testASpawnIntoAFullPoolFromAMemberProceedsWhenAnotherMemberFinishes() throws {
        let pool = Pool(size: 2)
        let release = Event()
        try pool.spawn { try release.wait() }
        var innerRan = false
        let spawningMember = try pool.spawn { () throws -> Void in
            try pool.spawn { innerRan = true }
        }
        try Green.sleep(0)
        release.set()
        _ = try withTimeout(5) { try spawningMember.join() }
        XCTAssertTrue(spawningMember.isSuccessful)
        XCTAssertTrue(try withTimeout(5) { try pool.join() })
        XCTAssertTrue(innerRan)
    }
}

/// What a scenario run on its own thread found wrong.
private final class ThreadFindings: Sendable {
    let problems = Locked<[String]?>(nil)
}

/// Runs `scenario` on a new OS thread, on that thread's own hub, and waits
/// at most `limit` seconds for it. The scenario appends what it finds
/// wrong to its argument. A scenario that hangs makes the test fail
/// instead of hanging the suite, and it needs no timer of its own (an
/// active timer would keep the hub from ever reporting a deadlock).
/// After a spawn into `pool` (full of members waiting for `release`) was
/// refused, or its spawner killed: it took no slot, and once the members
/// end, every slot is free; its body (`ran`: whether it ran, asked then)
/// never ran.
private func checkTheRefusedSpawnLeftNoTrace(in pool: Pool, release: Event, ran: @autoclosure () -> Bool,
                                             file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(pool.freeCount, 0, file: file, line: line)
    XCTAssertEqual(pool.count, pool.size, file: file, line: line)
    release.set()
    XCTAssertTrue(try withTimeout(5) { try pool.join() }, file: file, line: line)
    XCTAssertFalse(ran(), "the refused spawn's body ran", file: file, line: line)
    XCTAssertEqual(pool.freeCount, pool.size, file: file, line: line)
    XCTAssertEqual(pool.count, 0, file: file, line: line)
    XCTAssertFalse(pool.isFull, file: file, line: line)
}

/// Kills every member of `pool`, noting in `problems` if that threw.
private func killAll(of pool: Pool, noting problems: inout [String]) {
    do {
        try pool.kill()
    } catch {
        problems.append("pool.kill() threw \(error)")
    }
}

private func runOnOwnThread(limit: Double = 60,
                            _ scenario: @escaping @Sendable (inout [String]) -> Void) -> [String] {
    let findings = ThreadFindings()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        var problems: [String] = []
        scenario(&problems)
        if Hub.current.liveGreenlets != 0 {
            problems.append("\(Hub.current.liveGreenlets) greenlet(s) left alive on the thread's hub")
        }
        findings.problems.withLock { $0 = problems }
        done.signal()
    }
    thread.stackSize = 8 << 20
    thread.start()
    if done.wait(timeout: .now() + limit) == .timedOut {
        return ["the scenario did not end within \(limit) s (it hangs)"]
    }
    return findings.problems.withLock { $0 } ?? ["the scenario reported nothing"]
}
