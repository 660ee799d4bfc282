/// Suspends the calling greenlet for `seconds` while others run.
/// `sleep(0)` (or any non-positive value) is a fair yield: every greenlet
/// that was ready runs once before the caller continues. Throws the
/// interrupt when the greenlet is killed or an enclosing timeout expires
/// meanwhile (and `GreenError.blockingCallOnHub` in an async job on the
/// hub). Any thread: on a plain thread it sleeps in the thread's main
/// greenlet. Call it as `Green.sleep(_:)` to avoid the C library's
/// `sleep`.
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
/// first. Throws as `sleep(_:)` does.
public func sleep(until deadline: Double) throws {
    try Hub.current.sleep(until: deadline)
}

/// Lets the other ready greenlets run once: `sleep(0)`, which throws the
/// same way.
public func yield() throws {
    try Hub.withCurrent { try $0.yield() }
}
