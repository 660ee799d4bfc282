import Green
import GreenTestSupport
import XCTest

// The rules every waiting primitive keeps for its line of waiters (Lock,
// RLock, Semaphore, Condition, Event, AsyncResult, Queue, Channel,
// JoinableQueue): a waiter that gives up or is killed leaves the line,
// and what a waiter was granted stays granted whatever interrupts it
// afterwards. Each scenario is written once here; the suites run it on
// their primitive, through closures that wait on it and serve it, and
// check what is particular to it around the call.

/// What the greenlets of a scenario did, in the order they did it.
final class EventLog {
    private(set) var entries: [String] = []
    func callAsFunction(_ entry: String) { entries.append(entry) }
}

/// A timed-out waiter leaves the line: `first`, `middle` and `last` start
/// waiting in that order, each writing what it got to the log; `middle`
/// waits at most 10 ms, and logs `timedOut` when that expires. Then
/// `serve` hands out two (given the log, to check what happens between),
/// which must reach the others: the log ends with `served`.
func checkATimedOutWaiterLeavesTheLine(
    first: @escaping (EventLog) throws -> Void,
    middle: @escaping (EventLog) throws -> Void,
    last: @escaping (EventLog) throws -> Void,
    timedOut: String,
    serve: (EventLog) throws -> Void,
    served: [String],
    file: StaticString = #filePath, line: UInt = #line
) throws {
    let log = EventLog()
    let firstWaiter = spawn { try first(log) }
    let middleWaiter = spawn { try middle(log) }
    let lastWaiter = spawn { try last(log) }
    defer { cleanUp([firstWaiter, middleWaiter, lastWaiter]) }
    try Green.sleep(0)
    _ = try withTimeout(5) { try middleWaiter.join() }
    XCTAssertTrue(middleWaiter.isSuccessful, "\(String(describing: middleWaiter.error))", file: file, line: line)
    XCTAssertEqual(log.entries, [timedOut], file: file, line: line)
    try serve(log)
    _ = try withTimeout(5) { try joinAll([firstWaiter, lastWaiter], raiseError: true) }
    XCTAssertEqual(log.entries, [timedOut] + served, file: file, line: line)
}

/// A killed waiter leaves the line: `victim` and then `survivor` wait
/// (through `wait`, given their name; the one served then runs `andThen`,
/// to give back a lock); the victim is killed, either `blocking` (the kill returns once
/// it has ended) or not (it is ready to throw and still first in line);
/// `afterKill` runs, then `serve` hands out one. It must go to the
/// survivor, and the victim get nothing. Returns what the survivor got.
@discardableResult
func checkAKilledWaiterGetsNothing<T>(
    killBlocking: Bool,
    wait: @escaping (_ who: String) throws -> T,
    andThen: @escaping () throws -> Void = {},
    afterKill: () throws -> Void = {},
    serve: () throws -> Void,
    file: StaticString = #filePath, line: UInt = #line
) throws -> T? {
    var victimGot: T?
    var survivorGot: T?
    let victim = spawn { victimGot = try wait("victim"); try andThen() }
    let survivor = spawn { survivorGot = try wait("survivor"); try andThen() }
    defer { cleanUp([victim, survivor]) }
    try Green.sleep(0)
    if killBlocking {
        _ = try withTimeout(5) { try victim.kill() }
        XCTAssertTrue(victim.error is GreenletExit, "\(String(describing: victim.error))", file: file, line: line)
    } else {
        try victim.kill(block: false)
    }
    try afterKill()
    try serve()
    _ = try withTimeout(5) { try joinAll([victim, survivor]) }
    XCTAssertTrue(victim.error is GreenletExit, "\(String(describing: victim.error))", file: file, line: line)
    XCTAssertTrue(survivor.isSuccessful, "\(String(describing: survivor.error))", file: file, line: line)
    XCTAssertNil(victimGot, "the killed waiter was served", file: file, line: line)
    XCTAssertNotNil(survivorGot, "the survivor was not served", file: file, line: line)
    return survivorGot
}

/// A kill that arrives after a waiter was granted what it waits for,
/// before it ran again, takes nothing back: `wait` runs in a greenlet w;
/// once w waits, `grant` hands it what it waits for and w is killed
/// without blocking; `beforeItRuns` runs then. `wait` must return (what it
/// returned is returned here), and the kill be thrown at w's next
/// blocking point, where `onKill` runs (to give back what w holds).
@discardableResult
func checkAKillAfterTheGrantTakesNothingBack<T>(
    wait: @escaping () throws -> T,
    grant: () throws -> Void,
    beforeItRuns: () throws -> Void = {},
    onKill: @escaping () throws -> Void = {},
    file: StaticString = #filePath, line: UInt = #line
) throws -> T? {
    var got: T?
    var thrownAfter: (any Error)?
    let w = spawn {
        got = try wait()
        do {
            try Green.sleep(0)
        } catch {
            thrownAfter = error
            try onKill()
            throw error
        }
    }
    defer { cleanUp([w]) }
    try Green.sleep(0)
    try grant()                 // to w, which has not run yet
    try w.kill(block: false)    // arrives after the grant
    try beforeItRuns()
    _ = try withTimeout(5) { try w.join() }
    XCTAssertTrue(thrownAfter is GreenletExit, "\(String(describing: thrownAfter))", file: file, line: line)
    XCTAssertTrue(w.error is GreenletExit, "\(String(describing: w.error))", file: file, line: line)
    return got
}

/// A timeout that expires after a waiter was granted what it waits for,
/// before it ran again, takes nothing back: `wait` runs in a greenlet w
/// inside a 10 ms timeout; once that deadline has passed, `grant` hands
/// w what it waits for, and ready greenlets queued ahead of w make the
/// hub poll its timers (w's deadline has passed) before w runs. `wait`
/// must return (what it returned is returned here), and the expired
/// timeout be thrown at w's next blocking point; then w runs `afterwards`
/// with what `wait` returned (to give back what it holds).
@discardableResult
func checkATimeoutAfterTheGrantTakesNothingBack<T>(
    wait: @escaping () throws -> T,
    afterwards: @escaping (T?) throws -> Void = { _ in },
    grant: () throws -> Void,
    file: StaticString = #filePath, line: UInt = #line
) throws -> T? {
    let gate = Event()
    var got: T?
    var caught: (any Error)?
    // The fillers start first, so that the 10 ms deadline runs from just
    // before this greenlet's sleep, however long 300 starts take.
    let fillers = (0..<300).map { _ in spawn { try gate.wait() } }
    let w = spawn {
        do {
            try withTimeout(0.01) {
                got = try wait()
                try Green.sleep(1)      // the expired timeout is thrown here
            }
        } catch {
            caught = error
        }
        try afterwards(got)
    }
    defer { cleanUp([w] + fillers) }
    try Green.sleep(0)
    try letDeadlinesPass()
    gate.set()
    try grant()
    _ = try withTimeout(5) { try joinAll([w] + fillers, raiseError: true) }
    XCTAssertTrue(caught is TimeoutError, "\(String(describing: caught))", file: file, line: line)
    return got
}

// MARK: - Locks and semaphores

/// What Lock, RLock and Semaphore share: a wait to acquire (at most
/// `timeout` seconds), a release, and whether nobody can acquire now.
protocol Acquirable: AnyObject {
    @discardableResult func acquire(timeout: Double?) throws -> Bool
    func release() throws
    var isLocked: Bool { get }
}

extension Lock: Acquirable {}
extension RLock: Acquirable {}
extension Green.Semaphore: Acquirable {}

/// `checkATimedOutWaiterLeavesTheLine` on `a`, which nobody else can
/// acquire now: each waiter acquires it and, with `giveBack` (a lock),
/// releases it again once it has logged.
func checkATimedOutWaiterLeavesTheLine(
    of a: some Acquirable, giveBack: Bool, serve: (EventLog) throws -> Void,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    func waiter(_ name: String) -> (EventLog) throws -> Void {
        { log in
            try a.acquire(timeout: nil)
            log(name)
            if giveBack { try a.release() }
        }
    }
    try checkATimedOutWaiterLeavesTheLine(
        first: waiter("first"),
        middle: { log in log("middle \(try a.acquire(timeout: 0.01))") },
        last: waiter("last"),
        timedOut: "middle false", serve: serve, served: ["first", "last"],
        file: file, line: line)
}

/// `checkAKilledWaiterGetsNothing` on `a`, which nobody else can acquire
/// now, served by one release: with `giveBack` (a lock), the survivor
/// releases it again.
func checkAKilledWaiterGetsNothing(
    of a: some Acquirable, killBlocking: Bool, giveBack: Bool, afterKill: () throws -> Void = {},
    file: StaticString = #filePath, line: UInt = #line
) throws {
    try checkAKilledWaiterGetsNothing(
        killBlocking: killBlocking,
        wait: { _ in try a.acquire(timeout: nil) },
        andThen: { if giveBack { try a.release() } },
        afterKill: afterKill,
        serve: { try a.release() },
        file: file, line: line)
}

/// The only waiter for `a` is killed (made ready to throw) and `a`
/// released before the waiter runs: the release must skip it. `check`
/// runs right after the release and again once the waiter has ended.
func checkAReleaseSkipsAKilledOnlyWaiter(
    of a: some Acquirable, check: () -> Void,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    let victim = spawn { try a.acquire(timeout: nil) }
    defer { cleanUp([victim]) }
    try Green.sleep(0)
    try victim.kill(block: false)
    try a.release()
    check()
    _ = try withTimeout(5) { try victim.join() }
    XCTAssertTrue(victim.error is GreenletExit, "\(String(describing: victim.error))", file: file, line: line)
    check()
}

// MARK: - for-in over what waits (Queue, the lines of a BufferedReader)

/// A kill during a `for-in` over `sequence`, whose iterator waits for the
/// next element, ends the loop and is thrown at the next blocking call
/// after it: a consumer greenlet loops; once it waits for more, `feed`
/// runs (given what the loop has seen so far) and the consumer is killed.
func checkAKillDuringForInEndsTheLoop<S: Sequence>(
    over sequence: S, feed: (_ seen: () -> [S.Element]) throws -> Void,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    var seen: [S.Element] = []
    var loopEnded = false
    var thrownAfter: (any Error)?
    var reachedEnd = false
    let consumer = spawn {
        for item in sequence { seen.append(item) }
        loopEnded = true
        do {
            try Green.sleep(0)
        } catch {
            thrownAfter = error
            throw error
        }
        reachedEnd = true
    }
    defer { cleanUp([consumer]) }
    try Green.sleep(0)
    try feed { seen }
    XCTAssertFalse(loopEnded, "the loop ended before the kill", file: file, line: line)
    _ = try withTimeout(5) { try consumer.kill() }
    XCTAssertTrue(loopEnded, file: file, line: line)
    XCTAssertTrue(thrownAfter is GreenletExit, "\(String(describing: thrownAfter))", file: file, line: line)
    XCTAssertFalse(reachedEnd, file: file, line: line)
    XCTAssertTrue(consumer.error is GreenletExit, "\(String(describing: consumer.error))", file: file, line: line)
}

/// A timeout that expires during a `for-in` over `sequence` (which has
/// some elements, then waits) ends the loop and is thrown at the next
/// blocking call after it, and only there. Returns what the loop saw.
func forInUntilATimeoutExpires<S: Sequence>(
    over sequence: S, file: StaticString = #filePath, line: UInt = #line
) throws -> [S.Element] {
    var seen: [S.Element] = []
    var loopEnded = false
    let t = Timeout(0.02)
    t.start()
    defer { t.cancel() }
    XCTAssertThrowsError(try {
        for item in sequence { seen.append(item) }
        loopEnded = true
        try Green.sleep(0)
        XCTFail("the timeout was not thrown at the blocking call after the loop", file: file, line: line)
    }(), file: file, line: line) { error in
        XCTAssertTrue((error as? TimeoutError)?.isFrom(t) ?? false, "\(error)", file: file, line: line)
    }
    XCTAssertTrue(loopEnded, file: file, line: line)
    // Thrown once, not again.
    try Green.sleep(0)
    return seen
}

// MARK: - Queues

/// `checkATimedOutWaiterLeavesTheLine` for putters on `q`, which is full
/// (or a Channel nobody reads): "a", "b" and "c" wait to put in that
/// order, "b" at most 10 ms; each logs "<item> <done>" once its item is
/// in. `take` then takes items out until "a" and "c" are in.
func checkATimedOutPutterLeavesTheLine(
    of q: Queue<String>, logging done: String, take: () throws -> Void,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    func putter(_ item: String) -> (EventLog) throws -> Void {
        { log in
            try q.put(item)
            log("\(item) \(done)")
        }
    }
    try checkATimedOutWaiterLeavesTheLine(
        first: putter("a"),
        middle: { log in
            do {
                try q.put("b", timeout: 0.01)
                log("b \(done)")
            } catch is QueueFull {
                log("b timed out")
            }
        },
        last: putter("c"),
        timedOut: "b timed out", serve: { _ in try take() }, served: ["a \(done)", "c \(done)"],
        file: file, line: line)
}

/// A getter waits on the empty `q`: `item`, put then, goes straight to
/// it, not into the queue.
func checkAPutHandsTheItemToTheWaitingGetter<T: Equatable>(
    _ q: Queue<T>, _ item: T, file: StaticString = #filePath, line: UInt = #line
) throws {
    var got: T?
    let getter = spawn { got = try q.get() }
    defer { cleanUp([getter]) }
    try Green.sleep(0)
    try Green.sleep(0)
    XCTAssertNil(got, file: file, line: line)
    XCTAssertEqual(q.waitingGetters, 1, file: file, line: line)
    try q.put(item)
    XCTAssertEqual(q.count, 0, file: file, line: line)
    XCTAssertThrowsError(try q.getNowait(), file: file, line: line)
    _ = try withTimeout(5) { try getter.join() }
    XCTAssertEqual(got, item, file: file, line: line)
    XCTAssertEqual(q.waitingGetters, 0, file: file, line: line)
}

/// Getters wait on the empty `q`, one per item of `items`; the items put
/// then reach them in the order they started waiting.
func checkWaitingGettersAreServedInOrder(
    _ q: Queue<Int>, items: [Int], file: StaticString = #filePath, line: UInt = #line
) throws {
    var got: [String] = []
    let getters = items.indices.map { i in spawn { got.append("g\(i)=\(try q.get())") } }
    defer { cleanUp(getters) }
    try Green.sleep(0)
    XCTAssertEqual(q.waitingGetters, items.count, file: file, line: line)
    for item in items { try q.put(item) }
    _ = try withTimeout(5) { try joinAll(getters, raiseError: true) }
    XCTAssertEqual(got, items.indices.map { "g\($0)=\(items[$0])" }, file: file, line: line)
}

/// `count` putters and as many getters, all started at once, through `q`:
/// every item is delivered exactly once, and nobody is left waiting.
func checkManyPuttersAndGettersDeliverEveryItemOnce(
    through q: Queue<Int>, count: Int, file: StaticString = #filePath, line: UInt = #line
) throws {
    var received: [Int] = []
    let putters = (0..<count).map { i in spawn { try q.put(i) } }
    let getters = (0..<count).map { _ in spawn { received.append(try q.get()) } }
    defer { cleanUp(putters + getters) }
    _ = try withTimeout(30) { try joinAll(putters + getters, raiseError: true) }
    XCTAssertEqual(received.count, count, file: file, line: line)
    XCTAssertEqual(Set(received), Set(0..<count), file: file, line: line)
    XCTAssertTrue(q.isEmpty, file: file, line: line)
    XCTAssertEqual(q.waitingGetters, 0, file: file, line: line)
    XCTAssertEqual(q.waitingPutters, 0, file: file, line: line)
}

/// Puts `held` into `q`, which that fills, then spawns a putter that
/// waits to put `item`; returns the putter once it waits.
func spawnAPutterWaiting<T>(toPut item: T, into q: Queue<T>, fullWith held: [T]) throws -> Greenlet<Void> {
    for h in held { try q.put(h) }
    let putter = spawn { try q.put(item) }
    try Green.sleep(0)
    return putter
}
