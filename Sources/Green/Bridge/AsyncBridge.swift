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

/// From a greenlet: runs `body` as a Swift Concurrency task on this hub's
/// executor and returns its result (or rethrows its error), parking only
/// the calling greenlet. The body runs on the hub's thread between
/// greenlets (code it awaits that is isolated elsewhere, an actor on
/// another executor, runs there): keep CPU-heavy work out of it, and no
/// blocking green calls in it (they throw `GreenError.blockingCallOnHub`;
/// await `HubHandle.run` for those). If the greenlet is killed or an
/// enclosing timeout expires meanwhile, the task is cancelled and the
/// interrupt thrown at once (the task may still be finishing; its result
/// is dropped).
///
/// ```swift
/// let data = try awaitAsync { try await session.data(from: url).0 }
/// ```
public func awaitAsync<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = AsyncResult<T>()
    let task = Task(executorPreference: Hub.current.executor) {
        do {
            result.set(try await body())
        } catch {
            result.fail(error)
        }
    }
    do {
        return try result.get()
    } catch {
        task.cancel()
        throw error
    }
}
