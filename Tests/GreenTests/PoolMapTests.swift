import Green
import XCTest
import GreenTestSupport

/// `map`, `imap`, `imapUnordered` and `apply` on pools and groups.
final class PoolMapTests: GreenTestCase {
    // MARK: - map: results

    func testMapReturnsResultsInElementOrderWhenElementsFinishOutOfOrder() throws {
        let pool = Pool(size: 5)
        // Element i waits for element i + 1 to finish: they finish last
        // to first.
        let gates = (0..<5).map { _ in Event() }
        var finishOrder: [Int] = []
        let results = try withTimeout(5) {
            try pool.map(0..<5) { i -> String in
                if i < 4 { try gates[i].wait() }
                finishOrder.append(i)
                if i > 0 { gates[i - 1].set() }
                return "r\(i)"
            }
        }
        XCTAssertEqual(results, ["r0", "r1", "r2", "r3", "r4"])
        XCTAssertEqual(finishOrder, [4, 3, 2, 1, 0])
    }

    func testMapKeepsElementOrderWhateverTheNumberOfYieldsPerElement() throws {
        let pool = Pool(size: 4)
        var finishOrder: [Int] = []
        let results = try withTimeout(5) {
            try pool.map(0..<24) { i -> Int in
                for _ in 0..<((24 - i) % 5) { try Green.sleep(0) }
                finishOrder.append(i)
                return i * i
            }
        }
        XCTAssertEqual(results, (0..<24).map { $0 * $0 })
        XCTAssertEqual(finishOrder.sorted(), Array(0..<24))
        XCTAssertNotEqual(finishOrder, Array(0..<24), "the elements should have finished out of order")
    }

    func testMapOverAnEmptySequenceReturnsAnEmptyArray() throws {
        var calls = 0
        let results = try withTimeout(5) { try Pool(size: 3).map([Int]()) { i -> Int in calls += 1; return i } }
        XCTAssertEqual(results, [])
        XCTAssertEqual(calls, 0)
        XCTAssertEqual(try withTimeout(5) { try Group().map([String]()) { $0 } }, [])
    }

    func testMapOverAnEmptySequenceDoesNotWaitForASlotOfAFullPool() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, _, _ in
            let results = try withTimeout(5) { try pool.map([Int]()) { $0 } }
            XCTAssertEqual(results, [])
        }
    }

    func testMapRespectsThePoolSizeAndRunsElementsConcurrently() throws {
        let most = try mostRunningAtOnce(mapping: 20, throughAPoolOf: 3) { i in 1 + i % 3 }
        XCTAssertLessThanOrEqual(most, 3)
        XCTAssertGreaterThan(most, 1, "blocking bodies should overlap")
    }

    func testMapOnAPartlyUsedPoolRunsOnlyInTheFreeSlots() throws {
        try whileMembersWait(inAPoolOf: 3) { pool, _, members in
            let member = members[0]
            let overlap = Overlap()
            var maxMembers = 0
            let results = try withTimeout(5) {
                try pool.map(0..<10) { i -> Int in
                    try overlap.measure {
                        maxMembers = max(maxMembers, pool.count)
                        try Green.sleep(0)
                        try Green.sleep(0)
                        return -i
                    }
                }
            }
            XCTAssertEqual(results, (0..<10).map { -$0 })
            XCTAssertEqual(overlap.most, 2)
            XCTAssertLessThanOrEqual(maxMembers, 3)
            XCTAssertFalse(member.isReady)
            XCTAssertEqual(pool.freeCount, 2)
        }
    }

    func testEverySlotIsFreeAndEveryWorkerEndedWhenMapReturns() throws {
        let pool = Pool(size: 4)
        let results = try withTimeout(5) {
            try pool.map(0..<10) { i -> Int in
                try Green.sleep(0)
                return i
            }
        }
        XCTAssertEqual(results, Array(0..<10))
        assertEverySlotIsFree(pool)
        XCTAssertEqual(Hub.current.liveGreenlets, 0, "map returned before its workers ended")
    }

    func testMapReleasesItsElementsAndKeepsNoReferenceToItsResults() throws {
        weak var weakElement: Tracked?
        weak var weakResult: Tracked?
        try {
            let elements = (0..<8).map { Tracked($0) }
            weakElement = elements[3]
            let results = try withTimeout(5) {
                try Pool(size: 3).map(elements) { e -> Tracked in
                    try Green.sleep(0)
                    return Tracked(e.tag * 10)
                }
            }
            XCTAssertEqual(results.map(\.tag), (0..<8).map { $0 * 10 })
            weakResult = results[5]
        }()
        XCTAssertNil(weakElement, "an element outlived the map")
        XCTAssertNil(weakResult, "a result outlived its array")
    }

    // MARK: - map: errors and cancellation

    func testMapRethrowsTheFirstErrorAndCancelsTheRest() throws {
        let pool = Pool(size: 2)
        let work = try mapWhereElementOneFails(pool, count: 10, afterAYield: true)
        // map returned only after the running element was killed and ended.
        XCTAssertEqual(work.ended.sorted(), [0, 1])
        XCTAssertEqual(work.started, [0, 1], "elements after the failure should never start")
        assertEverySlotIsFree(pool)
    }

    func testMapKillsTheRunningElementsWhenOneFails() throws {
        let pool = Pool(size: 4)
        let allStarted = Event()
        let never = Event()
        var started = 0
        var killedWith: [String] = []
        XCTAssertThrowsError(try withTimeout(5) {
            try pool.map(0..<4) { i -> Int in
                started += 1
                if started == 4 { allStarted.set() }
                if i == 3 {
                    try allStarted.wait()
                    try Green.sleep(0)
                    throw TestError("last")
                }
                do {
                    try never.wait()
                } catch {
                    killedWith.append("\(i): \(error)")
                    throw error
                }
                return i
            }
        }) { XCTAssertEqual($0 as? TestError, TestError("last")) }
        XCTAssertEqual(killedWith.sorted(), ["0: GreenletExit", "1: GreenletExit", "2: GreenletExit"])
        XCTAssertEqual(pool.freeCount, 4)
    }

    func testMapRethrowsAnErrorThrownBeforeTheFailingElementEverBlocks() throws {
        // Element 1 fails at once, right after its worker started another
        // worker that has not run yet.
        let pool = Pool(size: 4)
        let work = try mapWhereElementOneFails(pool, count: 8, afterAYield: false)
        XCTAssertEqual(work.ended.count, 2)
        assertEverySlotIsFree(pool)
    }

    func testMapFromAMemberStopsTheCallersOwnElementWhenAWorkerFails() throws {
        // The caller, a member with a free slot beside it, takes element 0
        // and a worker element 1, which fails: the caller's element is
        // running work of this map too, and must be stopped like the rest.
        let pool = Pool(size: 2)
        let never = Event()
        var callerElementEnded = false
        let member = try pool.spawn(name: "mapping-member") { () throws -> [Int] in
            try pool.map([0, 1]) { i -> Int in
                if i == 1 {
                    try Green.sleep(0)
                    throw TestError("worker")
                }
                defer { callerElementEnded = true }
                try never.wait()
                return i
            }
        }
        defer { _ = try? withTimeout(5) { try pool.kill() } }
        XCTAssertThrowsError(try withTimeout(5) { try member.get() }) {
            XCTAssertEqual($0 as? TestError, TestError("worker"), "\($0)")
        }
        XCTAssertTrue(callerElementEnded)
    }

    func testMapOnAGroupRethrowsAnElementError() throws {
        let group = Group()
        XCTAssertThrowsError(try withTimeout(5) {
            try group.map([1, 2, 3]) { i -> Int in
                if i == 1 { throw TestError("one") }
                try Green.sleep(0)
                return i
            }
        }) { XCTAssertEqual($0 as? TestError, TestError("one"), "\($0)") }
        XCTAssertEqual(group.count, 0)
    }

    func testEverySlotIsFreeWhenMapThrows() throws {
        let pool = Pool(size: 3)
        XCTAssertThrowsError(try withTimeout(5) {
            try pool.map(0..<9) { i -> Int in
                try Green.sleep(0)
                if i == 4 { throw TestError("four") }
                try Green.sleep(0)
                return i
            }
        }) { XCTAssertEqual($0 as? TestError, TestError("four"), "\($0)") }
        assertEverySlotIsFree(pool)
        XCTAssertEqual(Hub.current.liveGreenlets, 0, "map threw before its workers ended")
    }

    func testKillingTheGreenletInsideMapKillsTheWorkersAndMapThrowsGreenletExit() throws {
        let pool = Pool(size: 3)
        let work = Lifetimes()
        let allStarted = Event()
        var callerSaw: (any Error)?
        let caller = spawn(name: "mapper") { () throws -> [Int] in
            do {
                return try pool.map(0..<6) { i -> Int in
                    if work.started.count == 2 { allStarted.set() }
                    return try work.waitUntilKilled(i)
                }
            } catch {
                callerSaw = error
                throw error
            }
        }
        _ = try withTimeout(5) { try allStarted.wait() }
        try withTimeout(5) { try caller.kill() }
        XCTAssertTrue(callerSaw is GreenletExit, "\(String(describing: callerSaw))")
        XCTAssertTrue(caller.error is GreenletExit)
        XCTAssertEqual(work.started.count, 3)
        XCTAssertEqual(work.ended.count, 3)
        assertEverySlotIsFree(pool)
    }

    func testATimeoutAroundMapCancelsTheWorkers() throws {
        let pool = Pool(size: 2)
        let work = Lifetimes()
        XCTAssertThrowsError(try withTimeout(0.05) {
            try pool.map(0..<5) { i in try work.waitUntilKilled(i) }
        }) { XCTAssertTrue($0 is TimeoutError, "\($0)") }
        XCTAssertEqual(work.started.count, 2)
        XCTAssertEqual(work.ended.count, 2)
        assertEverySlotIsFree(pool)
    }

    // MARK: - map: where it runs

    func testMapFromAMemberOfItsOwnFullPoolDoesTheWorkInTheCaller() throws {
        let pool = Pool(size: 1)
        var ranIn: Set<ObjectIdentifier> = []
        let member = try pool.spawn { () throws -> [Int] in
            try pool.map(0..<5) { i -> Int in
                ranIn.insert(ObjectIdentifier(AnyGreenlet.current))
                try Green.sleep(0)
                return i * 3
            }
        }
        XCTAssertEqual(try withTimeout(5) { try member.get() }, [0, 3, 6, 9, 12])
        XCTAssertEqual(ranIn, [ObjectIdentifier(member)])
        XCTAssertEqual(pool.freeCount, 1)
    }

    func testMapFromAMemberUsesTheFreeSlotsAsWell() throws {
        let pool = Pool(size: 3)
        let overlap = Overlap()
        let member = try pool.spawn { () throws -> [Int] in
            try pool.map(0..<12) { i -> Int in
                try overlap.measure {
                    try Green.sleep(0)
                    return i
                }
            }
        }
        XCTAssertEqual(try withTimeout(5) { try member.get() }, Array(0..<12))
        XCTAssertLessThanOrEqual(overlap.most, 3)
        XCTAssertGreaterThan(overlap.most, 1)
        XCTAssertEqual(pool.freeCount, 3)
    }

    func testMapOnAGroupRunsEveryElementAtOnce() throws {
        let group = Group()
        let allIn = Event()
        var running = 0
        let results = try withTimeout(5) {
            try group.map(0..<10) { i -> Int in
                running += 1
                if running == 10 { allIn.set() }
                try allIn.wait()
                return i * i
            }
        }
        XCTAssertEqual(results, (0..<10).map { $0 * $0 })
        XCTAssertEqual(group.count, 0)
    }

    func testTenThousandElementsThroughAPoolOfAHundred() throws {
        let most = try mostRunningAtOnce(mapping: 10_000, throughAPoolOf: 100, within: 60) { _ in 1 }
        XCTAssertLessThanOrEqual(most, 100)
    }

    // MARK: - imap

    func testImapYieldsResultsInElementOrder() throws {
        let pool = Pool(size: 3)
        let results = pool.imap(0..<20) { i -> Int in
            for _ in 0..<((20 - i) % 4) { try Green.sleep(0) }
            return i * 2
        }
        var got: [Int] = []
        try withTimeout(5) { while let r = try results.next() { got.append(r) } }
        XCTAssertEqual(got, (0..<20).map { $0 * 2 })
        XCTAssertNil(try withTimeout(5) { try results.next() })
        XCTAssertEqual(pool.freeCount, 3)
    }

    func testImapHoldsALaterResultUntilTheEarlierOnesAreDone() throws {
        let pool = Pool(size: 3)
        let gates = (0..<3).map { _ in Event() }
        var finishOrder: [Int] = []
        let results = pool.imap(0..<3) { i -> Int in
            if i < 2 { try gates[i].wait() }
            finishOrder.append(i)
            if i > 0 { gates[i - 1].set() }
            return i
        }
        XCTAssertEqual(try withTimeout(5) { try results.collect() }, [0, 1, 2])
        XCTAssertEqual(finishOrder, [2, 1, 0])
    }

    func testImapPullsElementsOnlyAsWorkProgresses() throws {
        let counter = PullCounter()
        let pool = Pool(size: 2)
        var results: MapResults<Int>? = pool.imap(CountingSequence(count: 10_000, counter: counter)) { i -> Int in
            try Green.sleep(0)
            return i
        }
        XCTAssertEqual(counter.pulled, 0, "elements were read before any result was asked for")
        XCTAssertEqual(try withTimeout(5) { try results!.next() }, 0)
        // Leave the results unread and let the workers run as far as they can.
        for _ in 0..<50 { try Green.sleep(0) }
        XCTAssertLessThan(counter.pulled, 10_000)
        // One result taken, and a window of twice the pool's size ahead.
        XCTAssertLessThanOrEqual(counter.pulled, 1 + 2 * 2)
        results = nil
        for _ in 0..<5 { try Green.sleep(0) }
        XCTAssertEqual(Hub.current.liveGreenlets, 0)
        XCTAssertEqual(pool.freeCount, 2)
    }

    func testImapReadsEveryElementWhenItsResultsAreAllRead() throws {
        let counter = PullCounter()
        let results = Pool(size: 4).imap(CountingSequence(count: 300, counter: counter)) { i -> Int in
            if i % 7 == 0 { try Green.sleep(0) }
            return i
        }
        XCTAssertEqual(try withTimeout(5) { try results.collect() }, Array(0..<300))
        XCTAssertEqual(counter.pulled, 300)
    }

    func testAnImapErrorIsThrownByTheNextThatReachesItAndEndsTheIteration() throws {
        let pool = Pool(size: 1)
        let results = pool.imap([0, 1, 2, 3]) { i -> Int in
            if i == 2 { throw TestError("two") }
            return i
        }
        XCTAssertEqual(try withTimeout(5) { try results.next() }, 0)
        XCTAssertEqual(try withTimeout(5) { try results.next() }, 1)
        XCTAssertThrowsError(try withTimeout(5) { try results.next() }) {
            XCTAssertEqual($0 as? TestError, TestError("two"), "\($0)")
        }
        XCTAssertNil(try withTimeout(5) { try results.next() }, "next() after the error should return nil")
        XCTAssertNil(try withTimeout(5) { try results.next() })
        for _ in 0..<3 { try Green.sleep(0) }
        XCTAssertEqual(Hub.current.liveGreenlets, 0)
        XCTAssertEqual(pool.freeCount, 1)
    }

    func testAnImapErrorStopsTheElementsStillRunning() throws {
        let pool = Pool(size: 3)
        let work = Lifetimes()
        let results = pool.imap(0..<10) { i -> Int in
            guard i == 0 else { return try work.waitUntilKilled(i) }
            return try work.track(i) { () throws -> Int in
                try Green.sleep(0)
                throw TestError("zero")
            }
        }
        XCTAssertThrowsError(try withTimeout(5) { try results.next() }) {
            XCTAssertEqual($0 as? TestError, TestError("zero"), "\($0)")
            // The next() that threw waited for the running ones to end.
            XCTAssertEqual(Hub.current.liveGreenlets, 0)
        }
        XCTAssertTrue(work.started.contains(1) && work.started.contains(2), "\(work.started)")
        XCTAssertEqual(work.ended.sorted(), work.started.sorted())
        XCTAssertEqual(pool.freeCount, 3)
    }

    func testDroppingImapResultsEarlyStopsTheRemainingWork() throws {
        let pool = Pool(size: 3)
        let work = Lifetimes()
        var results: MapResults<Int>? = pool.imap(0..<100) { i in try work.onlyTheFirstReturns(i) }
        XCTAssertEqual(try withTimeout(5) { try results!.next() }, 0)
        try Green.sleep(0)
        XCTAssertGreaterThan(work.started.count, 1)
        results = nil
        for _ in 0..<5 { try Green.sleep(0) }
        XCTAssertEqual(Hub.current.liveGreenlets, 0, "dropped imap results left workers running")
        XCTAssertEqual(work.ended.count, work.started.count)
        XCTAssertLessThan(work.started.count, 100)
        assertEverySlotIsFree(pool)
    }

    func testKillingTheImapReaderStopsTheWorkers() throws {
        let pool = Pool(size: 2)
        let work = Lifetimes()
        let allStarted = Event()
        let reader = spawn { () throws -> [Int] in
            try pool.imap(0..<10) { i -> Int in
                if work.started.count == 1 { allStarted.set() }
                return try work.waitUntilKilled(i)
            }.collect()
        }
        _ = try withTimeout(5) { try allStarted.wait() }
        try withTimeout(5) { try reader.kill() }
        XCTAssertTrue(reader.error is GreenletExit)
        XCTAssertEqual(work.started.count, 2)
        XCTAssertEqual(work.ended.count, 2)
        XCTAssertEqual(Hub.current.liveGreenlets, 0)
        XCTAssertEqual(pool.freeCount, 2)
    }

    func testKillingThePoolEndsItsImapWorkers() throws {
        let pool = Pool(size: 2)
        let work = Lifetimes()
        var results: MapResults<Int>? = pool.imap(0..<10) { i in try work.onlyTheFirstReturns(i) }
        defer {
            results = nil
            for _ in 0..<5 { _ = try? Green.sleep(0) }
        }
        XCTAssertEqual(try withTimeout(5) { try results!.next() }, 0)
        try Green.sleep(0)
        XCTAssertTrue(pool.isFull)
        // Nobody is reading: the kill alone must end the workers.
        try withTimeout(5) { try pool.kill() }
        assertEverySlotIsFree(pool)
        XCTAssertEqual(work.ended.count, work.started.count)
    }

    func testImapOverAnEmptySequenceDoesNotWaitForASlotOfAFullPool() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, _, _ in
            let results = pool.imap([Int]()) { $0 }
            XCTAssertNil(try withTimeout(5) { try results.next() })
        }
    }

    func testImapFromAMemberOfItsOwnFullPoolMakesProgress() throws {
        let pool = Pool(size: 1)
        let member = try pool.spawn { () throws -> [Int] in
            try pool.imap(0..<6) { i -> Int in
                try Green.sleep(0)
                return i + 100
            }.collect()
        }
        XCTAssertEqual(try withTimeout(5) { try member.get() }, Array(100..<106))
        XCTAssertEqual(pool.freeCount, 1)
    }

    func testImapOnAGroup() throws {
        let group = Group()
        let results = group.imap(["a", "b", "c"]) { s -> String in
            try Green.sleep(0)
            return s.uppercased()
        }
        XCTAssertEqual(try withTimeout(5) { try results.collect() }, ["A", "B", "C"])
        XCTAssertEqual(group.count, 0)
    }

    // MARK: - imapUnordered

    func testImapUnorderedYieldsResultsAsTheyFinish() throws {
        let pool = Pool(size: 2)
        let releaseFirst = Event()
        let results = pool.imapUnordered([0, 1]) { i -> Int in
            if i == 0 { try releaseFirst.wait() }
            return i
        }
        defer { releaseFirst.set() }
        XCTAssertEqual(try withTimeout(5) { try results.next() }, 1)
        releaseFirst.set()
        XCTAssertEqual(try withTimeout(5) { try results.next() }, 0)
        XCTAssertNil(try withTimeout(5) { try results.next() })
    }

    func testImapUnorderedDeliversEveryResultExactlyOnce() throws {
        let pool = Pool(size: 7)
        let results = pool.imapUnordered(0..<200) { i -> Int in
            for _ in 0..<((i * 7) % 5) { try Green.sleep(0) }
            return i
        }
        let all = try withTimeout(5) { try results.collect() }
        XCTAssertEqual(all.count, 200)
        XCTAssertEqual(all.sorted(), Array(0..<200))
        XCTAssertNil(try withTimeout(5) { try results.next() })
        XCTAssertEqual(pool.freeCount, 7)
    }

    func testAnImapUnorderedErrorIsThrownAndEndsTheIteration() throws {
        let pool = Pool(size: 3)
        let never = Event()
        var ended: [Int] = []
        let results = pool.imapUnordered(0..<6) { i -> Int in
            defer { ended.append(i) }
            if i == 1 { throw TestError("one") }
            if i == 2 { return 2 }
            try never.wait()
            return i
        }
        // Element 1 finishes first, with its error.
        XCTAssertThrowsError(try withTimeout(5) { try results.next() }) {
            XCTAssertEqual($0 as? TestError, TestError("one"), "\($0)")
        }
        XCTAssertNil(try withTimeout(5) { try results.next() }, "next() after the error should return nil")
        for _ in 0..<3 { try Green.sleep(0) }
        XCTAssertEqual(Hub.current.liveGreenlets, 0)
        XCTAssertTrue(ended.contains(0), "the running element 0 was not stopped")
        XCTAssertEqual(pool.freeCount, 3)
    }

    func testImapUnorderedFromAMemberOfItsOwnFullPoolMakesProgress() throws {
        let pool = Pool(size: 1)
        let member = try pool.spawn { () throws -> [Int] in
            try pool.imapUnordered(0..<5) { i -> Int in
                try Green.sleep(0)
                return i
            }.collect()
        }
        XCTAssertEqual(try withTimeout(5) { try member.get() }.sorted(), Array(0..<5))
    }

    // MARK: - apply

    func testApplyReturnsTheBodysValue() throws {
        let pool = Pool(size: 2)
        let value = try withTimeout(5) { try pool.apply { () throws -> String in try Green.sleep(0); return "value" } }
        XCTAssertEqual(value, "value")
        assertEverySlotIsFree(pool)
    }

    func testApplyRethrowsTheBodysError() throws {
        let pool = Pool(size: 2)
        XCTAssertThrowsError(try withTimeout(5) {
            try pool.apply { () throws -> Int in
                try Green.sleep(0)
                throw TestError("apply")
            }
        }) { XCTAssertEqual($0 as? TestError, TestError("apply"), "\($0)") }
        XCTAssertEqual(pool.freeCount, 2)
    }

    func testApplyRunsTheBodyInAGreenletOfThePool() throws {
        let pool = Pool(size: 2)
        let caller = AnyGreenlet.current
        let (inPool, isCaller) = try withTimeout(5) {
            try pool.apply { () -> (Bool, Bool) in
                (pool.contains(AnyGreenlet.current), AnyGreenlet.current === caller)
            }
        }
        XCTAssertTrue(inPool)
        XCTAssertFalse(isCaller)
    }

    func testApplyFromAMemberOfAFullPoolRunsInline() throws {
        let pool = Pool(size: 1)
        let member = try pool.spawn { () throws -> (Bool, Int) in
            let outer = AnyGreenlet.current
            return try pool.apply { () throws -> (Bool, Int) in
                try Green.sleep(0)
                return (AnyGreenlet.current === outer, 42)
            }
        }
        let (inline, value) = try withTimeout(5) { try member.get() }
        XCTAssertTrue(inline)
        XCTAssertEqual(value, 42)
        XCTAssertEqual(pool.freeCount, 1)
    }

    func testApplyWaitsForASlotOfAFullPool() throws {
        try whileMembersWait(inAPoolOf: 1) { pool, release, _ in
            var applied: Int?
            let caller = spawn { () throws -> Void in applied = try pool.apply { 5 } }
            try Green.sleep(0)
            XCTAssertNil(applied)
            release.set()
            _ = try withTimeout(5) { try caller.join() }
            XCTAssertEqual(applied, 5)
            XCTAssertEqual(pool.freeCount, 1)
        }
    }

    func testKillingTheApplyCallerKillsTheWork() throws {
        let pool = Pool(size: 1)
        let never = Event()
        let started = Event()
        var workEnded = false
        let caller = spawn { () throws -> Void in
            try pool.apply {
                defer { workEnded = true }
                started.set()
                try never.wait()
            }
        }
        _ = try withTimeout(5) { try started.wait() }
        try withTimeout(5) { try caller.kill() }
        XCTAssertTrue(caller.error is GreenletExit)
        for _ in 0..<3 { try Green.sleep(0) }
        XCTAssertTrue(workEnded)
        assertEverySlotIsFree(pool)
    }

    func testApplyOnAGroup() throws {
        let group = Group()
        XCTAssertEqual(try withTimeout(5) { try group.apply { () throws -> Int in try Green.sleep(0); return 8 } }, 8)
        XCTAssertEqual(group.count, 0)
    }
}

/// How many elements a `CountingSequence` handed out.
private final class PullCounter {
    var pulled = 0
}

/// 0..<count, counting the elements read from it.
private struct CountingSequence: Sequence, IteratorProtocol {
    let count: Int
    let counter: PullCounter
    private var nextValue = 0

    init(count: Int, counter: PullCounter) {
        self.count = count
        self.counter = counter
    }

    mutating func next() -> Int? {
        guard nextValue < count else { return nil }
        counter.pulled += 1
        nextValue += 1
        return nextValue - 1
    }
}

/// Maps `0..<count` through a new pool of `size` slots (within `limit`
/// seconds), element i's body yielding `yields(i)` times: checks that the
/// results come in element order and every slot is free afterwards.
/// Returns the most bodies that ran at once.
private func mostRunningAtOnce(mapping count: Int, throughAPoolOf size: Int, within limit: Double = 5,
                               yields: @escaping (Int) -> Int,
                               file: StaticString = #filePath, line: UInt = #line) throws -> Int {
    let pool = Pool(size: size)
    let overlap = Overlap()
    let results = try withTimeout(limit) {
        try pool.map(0..<count) { i -> Int in
            try overlap.measure {
                for _ in 0..<yields(i) { try Green.sleep(0) }
                return i * 2 + 1
            }
        }
    }
    XCTAssertEqual(results, (0..<count).map { $0 * 2 + 1 }, file: file, line: line)
    assertEverySlotIsFree(pool, file: file, line: line)
    return overlap.most
}

/// Maps `0..<count` through `pool`, where element 1 fails (at once, or
/// `afterAYield`) and every other element waits until it is killed: map
/// must rethrow element 1's error. Returns which elements started and
/// ended.
private func mapWhereElementOneFails(_ pool: Pool, count: Int, afterAYield: Bool,
                                     file: StaticString = #filePath, line: UInt = #line) throws -> Lifetimes {
    let work = Lifetimes()
    XCTAssertThrowsError(try withTimeout(5) {
        try pool.map(0..<count) { i -> Int in
            guard i == 1 else { return try work.waitUntilKilled(i) }
            return try work.track(i) { () throws -> Int in
                if afterAYield { try Green.sleep(0) }
                throw TestError("element 1")
            }
        }
    }, file: file, line: line) { XCTAssertEqual($0 as? TestError, TestError("element 1"), "\($0)", file: file, line: line) }
    return work
}
