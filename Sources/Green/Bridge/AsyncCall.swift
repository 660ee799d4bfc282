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
/// `@unchecked Sendable`: `executor` and `mailbox` are immutable;
/// `phase` is atomic, and the task writes `slot` (the greenlet's memory,
/// freed only after `wait` returns) only between winning `phase` and
/// publishing `written`. `hub`, `greenlet` and `inWait` are used on the
/// hub's thread only (`init`, `wait`, and `complete`'s same-thread path, taken
/// when `mailbox.isHubThread`: the hub's thread while the hub is there, not
/// a later thread that reuses its id, or the posted job); the greenlet is alive while `inWait` is true.
@usableFromInline
final class AsyncCall: @unchecked Sendable {
    private static let waiting = 0, writing = 1, written = 2, abandoned = 3

    @usableFromInline let executor: HubExecutor
    private let phase = Atomic<Int>(AsyncCall.waiting)
    private let slot: UnsafeMutableRawPointer
    private let mailbox: HubMailbox
    private unowned(unsafe) let hub: Hub
    private unowned(unsafe) let greenlet: AnyGreenlet
    private var inWait = true

    /// Registers the calling greenlet, which will wait for the task.
    /// Throws `GreenError.blockingCallOnHub` on the hub's own context.
    @usableFromInline
    init(slot: UnsafeMutableRawPointer) throws {
        let hub = Hub.current
        let me: AnyGreenlet = hub.current
        try hub.checkMayBlock(me, in: "awaitAsync")
        self.hub = hub
        greenlet = me
        self.slot = slot
        executor = hub.executor
        mailbox = hub.mailbox
        // The task may wait on other threads: the hub must not find its
        // greenlets deadlocked meanwhile.
        hub.beginRemoteWait()
    }

    /// The task's end: stores the result with `write` unless the greenlet
    /// gave up, and wakes the greenlet. Any thread.
    @usableFromInline
    func complete(_ write: (UnsafeMutableRawPointer) -> Void) {
        guard phase.compareExchange(expected: AsyncCall.waiting, desired: AsyncCall.writing,
                                    ordering: .acquiring).exchanged else { return }
        write(slot)
        phase.store(AsyncCall.written, ordering: .releasing)
        if mailbox.isHubThread {
            if inWait { hub.ready(greenlet) }
            return
        }
        mailbox.post { [self] in
            if inWait { hub.ready(greenlet) }
        }
    }

    /// Parks the greenlet until the task has written its result. On an
    /// interrupt, cancels the task and throws. Calling greenlet only.
    @usableFromInline
    func wait(cancelling task: Task<Void, Never>) throws {
        defer {
            inWait = false
            hub.endRemoteWait()
        }
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
