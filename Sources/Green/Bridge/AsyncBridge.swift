// Greenlets and Swift Concurrency, both ways.
//
//   * A greenlet awaits an `async` function with `awaitAsync`: the
//     function runs as a `Task` on Swift's cooperative thread pool; the
//     greenlet parks and its hub keeps running other greenlets; the task's
//     result comes back through the hub's cross-thread wake-up. Never block
//     a hub's thread on a task with a semaphore: that would stall every
//     greenlet of the hub.
//   * Async code runs a greenlet and awaits its result with
//     `HubHandle.run` (see HubHandle.swift): the body runs in a new greenlet
//     on that hub's thread; the task suspends without holding a thread.
//     `HubThread` gives async code a hub of its own to send work to.

/// From a greenlet: runs `body` as a Swift Concurrency task and returns its
/// result (or rethrows its error), parking only the calling greenlet. If
/// the greenlet is killed or an enclosing timeout expires meanwhile, the
/// task is cancelled and the interrupt thrown at once (the task may still
/// be finishing; its result is dropped).
///
/// ```swift
/// let data = try awaitAsync { try await session.data(from: url).0 }
/// ```
public func awaitAsync<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = AsyncResult<T>()
    let task = Task {
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
