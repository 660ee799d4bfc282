// Waking a hub from another OS thread.
//
// A hub and its greenlets are confined to their thread, so another thread
// never touches them. It posts a job to the hub's mailbox and signals
// libev's `ev_async` watcher (thread-safe, an eventfd write); the hub runs
// the job on its own thread, in the watcher's callback. Jobs only ever
// make greenlets ready: they run on the hub's stack, inside the loop, and
// must not block.
//
// The async watcher does not keep the loop alive on its own (it is
// `ev_unref`ed), so a hub whose greenlets all wait on one another is still
// found deadlocked. A greenlet that waits for another thread says so with
// `beginRemoteWait`, which counts as a live wake-up source until
// `endRemoteWait`.
import CLibev
import Glibc

/// The one part of a hub that other threads may use. Outlives the hub when
/// another thread still holds it; posts after the hub's thread exited are
/// dropped.
final class HubMailbox: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        /// The loop and watcher, nil once the hub is gone. Signalled only
        /// under the lock, so the hub cannot destroy them meanwhile.
        var target: Target?
    }

    // Used from any thread, under the lock, through libev's thread-safe
    // `ev_async_send` only.
    private struct Target: @unchecked Sendable {
        let loop: OpaquePointer
        let watcher: UnsafeMutablePointer<ev_async>
    }

    private let state: Locked<State>

    init(loop: OpaquePointer, watcher: UnsafeMutablePointer<ev_async>) {
        state = Locked(State(jobs: [], target: Target(loop: loop, watcher: watcher)))
    }

    /// Queues `job` to run on the hub's thread. Returns false (and drops
    /// the job) if the hub's thread has exited. Callable from any thread.
    @discardableResult
    func post(_ job: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { s in
            guard let t = s.target else { return false }
            s.jobs.append(job)
            if s.jobs.count == 1 { ev_async_send(t.loop, t.watcher) }
            return true
        }
    }

    /// Takes the queued jobs. Hub thread only.
    func takeJobs() -> [@Sendable () -> Void] {
        state.withLock { s in
            let jobs = s.jobs
            s.jobs = []
            return jobs
        }
    }

    /// Refuses further posts: the hub is going away. Hub thread only.
    func close() {
        state.withLock { s in
            s.target = nil
            s.jobs = []
        }
    }
}

/// A greenlet's registration for a wake-up that another thread triggers:
/// made and ended on the greenlet's own thread, `wake()` callable anywhere.
final class RemoteWaiter: @unchecked Sendable {
    // Touched on the hub's thread only (in `init`, `end` and posted jobs).
    private unowned(unsafe) let hub: Hub
    private unowned(unsafe) let greenlet: AnyGreenlet
    private var waiting = true
    // Immutable, thread-safe.
    private let mailbox: HubMailbox
    private let thread: pthread_t

    /// Registers the calling greenlet; the hub counts it as a live wake-up
    /// source until `end()`.
    init(hub: Hub, greenlet: AnyGreenlet) {
        self.hub = hub
        self.greenlet = greenlet
        mailbox = hub.mailbox
        thread = hub.thread
        hub.beginRemoteWait()
    }

    /// Ends the registration; later wakes do nothing. Hub thread only.
    func end() {
        guard waiting else { return }
        waiting = false
        hub.endRemoteWait()
    }

    /// Makes the greenlet ready if it is still waiting. Any thread; on the
    /// greenlet's own thread it happens at once, without the mailbox.
    func wake() {
        if pthread_equal(thread, pthread_self()) != 0 {
            if waiting { hub.ready(greenlet) }
            return
        }
        mailbox.post { [self] in
            // On the hub's thread: `waiting` tells whether the greenlet is
            // still in its wait, hence alive.
            if waiting { hub.ready(greenlet) }
        }
    }
}
