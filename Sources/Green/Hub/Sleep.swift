/// Suspends the calling greenlet for `seconds` while others run.
/// `sleep(0)` (or any non-positive value) is a fair yield: every greenlet
/// that was ready runs once before the caller continues. Throws when the
/// greenlet is killed or a timeout expires meanwhile. Call it as
/// `Green.sleep(_:)` to avoid the C library's `sleep`.
public func sleep(_ seconds: Double) throws {
    try Hub.withCurrent { hub in
        if seconds > 0 {
            try hub.sleep(until: hub.nowUpdated() + seconds)
        } else {
            try hub.yield()
        }
    }
}

/// Suspends the calling greenlet until the hub's clock (`Hub.current.now`)
/// reaches `deadline`. Greenlets sleeping until earlier deadlines wake
/// first.
public func sleep(until deadline: Double) throws {
    try Hub.current.sleep(until: deadline)
}

/// Lets the other ready greenlets run once: `sleep(0)`.
public func yield() throws {
    try Hub.withCurrent { try $0.yield() }
}
