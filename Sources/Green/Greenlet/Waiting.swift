/// Waits until every greenlet in `greenlets` has finished, at most
/// `timeout` seconds. Returns the ones that finished. With `raiseError`,
/// throws the first error of a failed greenlet as soon as one fails.
/// Blocks only the calling greenlet; throws the interrupt if the caller is
/// killed or an enclosing timeout expires. Call it on the thread of the
/// greenlets' hub.
@discardableResult
public func joinAll(_ greenlets: [AnyGreenlet], timeout: Double? = nil,
                    raiseError: Bool = false) throws -> [AnyGreenlet] {
    let hub = Hub.current
    let me = hub.current!
    func firstFailure() -> (any Error)? {
        guard raiseError else { return nil }
        for g in greenlets where g.isReady {
            if let e = g.failure, !(e is GreenletExit) {
                g.outcomeObserved = true
                return e
            }
        }
        return nil
    }
    func waitAll() throws {
        for g in greenlets where !g.isReady { g.addWaiter(me) }
        defer { for g in greenlets { g.removeWaiter(me) } }
        while true {
            if let e = firstFailure() { throw e }
            if greenlets.allSatisfy({ $0.isReady }) { return }
            try hub.park(me, on: "joinAll")
        }
    }
    if let timeout {
        _ = try hub.withDeadline(timeout) { try waitAll() }
    } else {
        try waitAll()
    }
    if let e = firstFailure() { throw e }
    return greenlets.filter { $0.isReady }
}

/// Kills every greenlet in `greenlets` with `error` (see `kill`); with
/// `block`, waits up to `timeout` seconds for all of them to finish,
/// blocking only the calling greenlet, and throws the interrupt if the
/// caller is killed or an enclosing timeout expires. Call it on the thread
/// of the greenlets' hub.
public func killAll(_ greenlets: [AnyGreenlet], _ error: any Error = GreenletExit(),
                    block: Bool = true, timeout: Double? = nil) throws {
    for g in greenlets where !g.isReady {
        try g.kill(error, block: false)
    }
    if block { try joinAll(greenlets, timeout: timeout) }
}

/// Waits until any greenlet in `greenlets` finishes, at most `timeout`
/// seconds, and returns it (the earliest in the array if several are
/// ready); nil if the time ran out or the array is empty. Blocks only the
/// calling greenlet; throws the interrupt if the caller is killed or an
/// enclosing timeout expires. Call it on the thread of the greenlets' hub.
public func wait(any greenlets: [AnyGreenlet], timeout: Double? = nil) throws -> AnyGreenlet? {
    if greenlets.isEmpty { return nil }
    var completions = Completions(greenlets)
    return try completions.next(timeout: timeout)
}

/// The greenlets of a set in the order they finish, like gevent's
/// `iwait`. `next()` blocks the calling greenlet until one more has
/// finished. Use it on the thread of the greenlets' hub:
///
/// ```swift
/// var done = completions(of: greenlets)
/// while let g = try done.next() { print(g.name, "finished") }
/// ```
public struct Completions {
    private var remaining: [AnyGreenlet]

    /// The completions of `greenlets`, none returned yet. Use it on the
    /// thread of their hub.
    public init(_ greenlets: [AnyGreenlet]) { remaining = greenlets }

    /// How many greenlets have not been returned yet.
    public var count: Int { remaining.count }

    /// The next greenlet to finish (already finished ones first, in array
    /// order); nil when all were returned or `timeout` expired.
    /// Throws if the caller is killed or an outer timeout expires.
    public mutating func next(timeout: Double? = nil) throws -> AnyGreenlet? {
        if let i = remaining.firstIndex(where: { $0.isReady }) { return remaining.remove(at: i) }
        if remaining.isEmpty { return nil }
        let hub = Hub.current
        let me = hub.current!
        let waitOne = { [remaining] in
            for g in remaining { g.addWaiter(me) }
            defer { for g in remaining { g.removeWaiter(me) } }
            while !remaining.contains(where: { $0.isReady }) {
                try hub.park(me, on: "wait(any:)")
            }
        }
        if let timeout {
            if try !hub.withDeadline(timeout, waitOne) { return nil }
        } else {
            try waitOne()
        }
        let i = remaining.firstIndex(where: { $0.isReady })!
        return remaining.remove(at: i)
    }
}

/// The greenlets of `greenlets` as they finish; see `Completions`.
public func completions(of greenlets: [AnyGreenlet]) -> Completions {
    Completions(greenlets)
}
