import Glibc
import Synchronization

/// The hand-off between a greenlet parked in `awaitAsync` and the task
/// that computes its result: the task writes the result into the
/// greenlet's slot unless the greenlet gave up first, then wakes it.
///
/// `phase` decides the race between the two ends (the task normally ends
/// on the hub's thread, but nothing forces the last part of a task onto
/// its preferred executor, so it is written for any thread): the task
/// moves it from waiting to writing to written, the greenlet from waiting
/// to abandoned. Exactly one wins; a greenlet that lost waits out the
/// write (a few instructions on another thread) before its slot goes.
///
/// The registration itself, and the wake-up from the hub's thread or any
/// other, are `RemoteWaiter`'s: the task may wait on other threads, so the
/// hub must not find its greenlets deadlocked meanwhile.
///
/// `@unchecked Sendable`: `executor` is immutable; `phase` is atomic, and
/// the task writes `slot` (the greenlet's memory, freed only after `wait`
/// returns) only between winning `phase` and publishing `written`.
@usableFromInline
final class AsyncCall: RemoteWaiter, @unchecked Sendable {
    private static let waiting = 0, writing = 1, written = 2, abandoned = 3

    @usableFromInline let executor: HubExecutor
    private let phase = Atomic<Int>(AsyncCall.waiting)
    private let slot: UnsafeMutableRawPointer

    /// Registers the calling greenlet, which will wait for the task.
    /// Throws `GreenError.blockingCallOnHub` on the hub's own context.
    @usableFromInline
    init(slot: UnsafeMutableRawPointer) throws {
        let hub = Hub.current
        let me: AnyGreenlet = hub.current
        try hub.checkMayBlock(me, in: "awaitAsync")
        self.slot = slot
        executor = hub.executor
        super.init(hub: hub, greenlet: me)
    }

    /// The task's end: stores the result with `write` unless the greenlet
    /// gave up, and wakes the greenlet. Any thread.
    @usableFromInline
    func complete(_ write: (UnsafeMutableRawPointer) -> Void) {
        guard phase.compareExchange(expected: AsyncCall.waiting, desired: AsyncCall.writing,
                                    ordering: .acquiring).exchanged else { return }
        write(slot)
        phase.store(AsyncCall.written, ordering: .releasing)
        wake()
    }

    /// Parks the greenlet until the task has written its result. On an
    /// interrupt, cancels the task and throws. Calling greenlet only.
    @usableFromInline
    func wait(cancelling task: Task<Void, Never>) throws {
        defer { end() }
        while phase.load(ordering: .acquiring) != AsyncCall.written {
            do {
                try hub.park(greenlet, on: "awaitAsync")
            } catch {
                if phase.compareExchange(expected: AsyncCall.waiting, desired: AsyncCall.abandoned,
                                         ordering: .acquiring).exchanged {
                    task.cancel()
                    throw error
                }
                // The task is writing on another thread (on this one it
                // could not be mid-write while the greenlet runs).
                while phase.load(ordering: .acquiring) != AsyncCall.written { sched_yield() }
                throw error
            }
        }
    }
}
