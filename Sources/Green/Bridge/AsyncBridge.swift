// Greenlets and Swift Concurrency, both ways.
//
//   * A greenlet awaits an `async` function with `awaitAsync`: the
//     function runs as a `Task` whose preferred executor is the greenlet's
//     hub (`HubExecutor`), so it runs on this thread between greenlets
//     (hopping elsewhere only where it awaits code isolated elsewhere);
//     the greenlet parks and its hub keeps running other greenlets; the
//     result wakes it without crossing a thread. Never block a hub's
//     thread on a task with a semaphore: that would stall every greenlet
//     of the hub.
//   * Async code runs a greenlet and awaits its result with
//     `HubHandle.run` (see HubHandle.swift): the body runs in a new greenlet
//     on that hub's thread; the task suspends without holding a thread.
//     `HubThread` gives async code a hub of its own to send work to.
//
// The cost of a crossing is the task's (its creation, one job, its end)
// plus two greenlet switches. `awaitAsync` is inlinable so that it is
// specialized for the caller's result type: unspecialized generic code
// looks up type metadata at run time, which cost more than the rest of the
// crossing together. What is not generic, the hand-off between the task
// and the parked greenlet, is `AsyncCall`.

/// From a greenlet: runs `body` as a Swift Concurrency task on this hub's
/// executor and returns its result (or rethrows its error), parking only
/// the calling greenlet. The body runs on the hub's thread between
/// greenlets (code it awaits that is isolated elsewhere, an actor on
/// another executor, runs there): keep CPU-heavy work out of it, and no
/// blocking green calls in it (they throw `GreenError.blockingCallOnHub`;
/// await `HubHandle.run` for those). If the greenlet is killed or an
/// enclosing timeout expires meanwhile, the task is cancelled and the
/// interrupt thrown at once (the task may still be finishing; its result
/// is dropped). Called from async code on the hub (a job, not a greenlet)
/// it throws `GreenError.blockingCallOnHub`: await the body instead.
///
/// ```swift
/// let data = try awaitAsync { try await session.data(from: url).0 }
/// ```
@inlinable
public func awaitAsync<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    // The result goes into memory of its own: the greenlet's stack may be
    // copied out while it is parked (compact mode), so the task must not
    // write into it. It is freed only after `wait` returns, when the task
    // has either finished writing or will never write (see `AsyncCall`).
    let slot = UnsafeMutablePointer<Result<T, any Error>?>.allocate(capacity: 1)
    slot.initialize(to: nil)
    defer {
        slot.deinitialize(count: 1)
        slot.deallocate()
    }
    let call = try AsyncCall(slot: UnsafeMutableRawPointer(slot))
    let task = Task(executorPreference: call.executor) {
        let outcome: Result<T, any Error>
        do {
            outcome = .success(try await body())
        } catch {
            outcome = .failure(error)
        }
        call.complete { $0.assumingMemoryBound(to: Result<T, any Error>?.self).pointee = outcome }
    }
    try call.wait(cancelling: task)
    return try slot.pointee!.get()
}
