import Green
import GreenTestSupport
import XCTest

// What the suites of Pool, Group and their map/imap/apply share.

/// Runs `body` with a pool of `size` slots, `count` of them taken by
/// members that wait for `release` (given to `body`, with the members:
/// setting it lets them end). Then sets it and waits (at most 5 s) for
/// every member of the pool to end.
func whileMembersWait(inAPoolOf size: Int, count: Int = 1,
                      _ body: (_ pool: Pool, _ release: Event, _ members: [AnyGreenlet]) throws -> Void) throws {
    let pool = Pool(size: size)
    let release = Event()
    let members: [AnyGreenlet] = try (0..<count).map { _ in try pool.spawn { try release.wait() } }
    defer { release.set(); _ = try? withTimeout(5) { try pool.join() } }
    try body(pool, release, members)
}

/// Checks that every slot of `pool` is free again: no member is left.
func assertEverySlotIsFree(_ pool: Pool, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(pool.freeCount, pool.size, "free slots", file: file, line: line)
    XCTAssertEqual(pool.count, 0, "members", file: file, line: line)
}

/// Spawns `count` members into `group` that wait for ever (until a kill
/// ends them). Returns them, and how many of them have run their defers.
func spawnMembersWaitingForever(_ count: Int, in group: Group) throws
    -> (members: [AnyGreenlet], defersRun: () -> Int) {
    let never = Event()
    var defersRun = 0
    let members: [AnyGreenlet] = try (0..<count).map { _ in
        try group.spawn {
            defer { defersRun += 1 }
            try never.wait()
        }
    }
    return (members, { defersRun })
}

/// Counts the bodies (of a map's elements, of a pool's members) running
/// at once, and the most that ever did.
final class Overlap {
    private(set) var running = 0
    private(set) var most = 0

    /// Runs `body`, counted as running meanwhile.
    func measure<T>(_ body: () throws -> T) rethrows -> T {
        running += 1
        most = max(most, running)
        defer { running -= 1 }
        return try body()
    }
}

/// The elements of a map whose bodies started, and the ones whose bodies
/// ended (returned or threw), in that order; and an event nobody sets, for
/// bodies that wait until they are killed.
final class Lifetimes {
    private(set) var started: [Int] = []
    private(set) var ended: [Int] = []
    let never = Event()

    /// Runs element `i`'s `body`, noting its start and its end.
    func track<T>(_ i: Int, _ body: () throws -> T) rethrows -> T {
        started.append(i)
        defer { ended.append(i) }
        return try body()
    }

    /// Element `i`'s body that waits until it is killed, then throws.
    func waitUntilKilled(_ i: Int) throws -> Int {
        try track(i) {
            try never.wait()
            return i
        }
    }

    /// Element `i`'s body where only the first element returns (at once);
    /// the others wait until they are killed.
    func onlyTheFirstReturns(_ i: Int) throws -> Int {
        i == 0 ? track(i) { 0 } : try waitUntilKilled(i)
    }
}
