import Green
import GreenTestSupport

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
