// Telling an interrupt (a kill, a timeout, a scope's cancellation) from a
// call's own failure, for code that handles the failures itself: a
// best-effort close_notify, an error response to a client that may be
// gone. `try?` there would swallow the interrupt too, and the greenlet
// would go on as if never killed.
//
// The hub records each interrupt it throws in the greenlet's
// `lastDelivered`; cleared for the call and put back afterwards unless
// the call received a new one, it says whether the error came from one.

/// Runs `body` and returns its result or its own error; an interrupt it
/// received (a kill, an enclosing timeout, a scope's cancellation) is
/// thrown instead. For steps whose failures the caller answers itself
/// (an error response to a client that may be gone, a best-effort
/// shutdown) but which must not keep the greenlet from being killed.
/// Blocks as `body` does; call it from the greenlet that runs `body`.
public func catchingFailures<R>(_ body: () throws -> R) throws -> Result<R, any Error> {
    let outcome = separatingInterrupts(body)
    if outcome.interrupted, case .failure(let error) = outcome.result { throw error }
    return outcome.result
}

/// Runs `body` and returns its result, or nil if it failed; an interrupt
/// it received (a kill, an enclosing timeout, a scope's cancellation) is
/// thrown instead. The throwing twin of `try?` for best-effort steps.
/// Blocks as `body` does; call it from the greenlet that runs `body`.
@discardableResult
public func bestEffort<R>(_ body: () throws -> R) throws -> R? {
    let outcome = try catchingFailures(body)
    return try? outcome.get()
}

/// Runs `body` and says whether the error it threw, if any, was an
/// interrupt the hub delivered during the call.
func separatingInterrupts<R>(_ body: () throws -> R) -> (result: Result<R, any Error>, interrupted: Bool) {
    Hub.withCurrent { hub in
        let g: AnyGreenlet = hub.current
        let earlier = g.lastDelivered
        g.lastDelivered = nil
        let result = Result(catching: body)
        let interrupted = g.lastDelivered != nil
        if !interrupted { g.lastDelivered = earlier }
        return (result, interrupted)
    }
}
