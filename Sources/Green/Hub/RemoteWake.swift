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
import Synchronization

/// The one part of a hub that other threads may use. Outlives the hub when
/// another thread still holds it; posts after the hub's thread exited are
/// dropped.
@usableFromInline
final class HubMailbox: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        /// Async jobs for the hub's executor, from other threads.
        var executorJobs: [HubJob] = []
        /// The loop and watcher, nil once the hub is gone. Signalled only
        /// under the lock, so the hub cannot destroy them meanwhile.
        var target: Target?
    }

    // `@unchecked Sendable`: the loop and watcher are the hub's; other
    // threads use them only inside `state`'s lock, and only through
    // libev's thread-safe `ev_async_send`. `close` (hub thread, in the
    // hub's deinit, before they are freed) clears `target` under that
    // lock, so no send can reach freed memory.
    private struct Target: @unchecked Sendable {
        let loop: OpaquePointer
        let watcher: UnsafeMutablePointer<ev_async>
    }

    private let state: Locked<State>
    /// The hub's thread.
    private let thread: pthread_t
    /// False once `close` ran.
    private let open = Atomic<Bool>(true)

    init(loop: OpaquePointer, watcher: UnsafeMutablePointer<ev_async>, thread: pthread_t) {
        state = Locked(State(jobs: [], executorJobs: [], target: Target(loop: loop, watcher: watcher)))
        self.thread = thread
    }

    /// Whether the caller runs on the hub's thread while the hub is there
    /// (not in its thread's teardown), so that it may use the hub directly.
    var isHubThread: Bool {
        pthread_equal(thread, pthread_self()) != 0 && open.load(ordering: .acquiring)
    }

    /// Queues `job` to run on the hub's thread. Returns false (and drops
    /// the job) if the hub's thread has exited. Callable from any thread.
    @discardableResult
    func post(_ job: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { s in
            guard let t = s.target else { return false }
            s.jobs.append(job)
            if s.jobs.count == 1 && s.executorJobs.isEmpty { ev_async_send(t.loop, t.watcher) }
            return true
        }
    }

    /// Queues an async job for the hub's executor. Returns false if the
    /// hub's thread has exited. Any thread.
    func postJob(_ job: HubJob) -> Bool {
        state.withLock { s in
            guard let t = s.target else { return false }
            s.executorJobs.append(job)
            if s.executorJobs.count == 1 && s.jobs.isEmpty { ev_async_send(t.loop, t.watcher) }
            return true
        }
    }

    /// Takes the queued jobs of both kinds at once (so that a post finding
    /// the mailbox empty always signals). Hub thread only.
    func takeAll() -> (jobs: [@Sendable () -> Void], executorJobs: [HubJob]) {
        state.withLock { s in
            defer {
                s.jobs = []
                s.executorJobs = []
            }
            return (s.jobs, s.executorJobs)
        }
    }

    /// Refuses further posts: the hub is going away. Hub thread only.
    func close() {
        open.store(false, ordering: .releasing)
        state.withLock { s in
            s.target = nil
            s.jobs = []
            s.executorJobs = []
        }
    }
}

/// A greenlet's registration for a wake-up that another thread triggers:
/// made and ended on the greenlet's own thread, `wake()` callable anywhere.
///
/// `@unchecked Sendable`: `mailbox` is immutable and
/// thread-safe; `hub`, `greenlet` and `waiting` are used on the hub's
/// thread only (`init`, `end`, and `wake`'s same-thread path, taken when
/// `mailbox.isHubThread`: the hub's thread while the hub is there, not a
/// later thread that reuses its id; or the posted job). The greenlet is alive while `waiting` is true: it ends the
/// registration before it leaves its wait.
@usableFromInline
class RemoteWaiter: @unchecked Sendable {
    unowned(unsafe) let hub: Hub
    unowned(unsafe) let greenlet: AnyGreenlet
    private var waiting = true
    private let mailbox: HubMailbox

    /// Registers the calling greenlet; the hub counts it as a live wake-up
    /// source until `end()`.
    init(hub: Hub, greenlet: AnyGreenlet) {
        self.hub = hub
        self.greenlet = greenlet
        mailbox = hub.mailbox
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
        if mailbox.isHubThread {
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

extension Hub {
    /// Counts a greenlet waiting for another thread as a live wake-up
    /// source, so the hub does not report it deadlocked.
    func beginRemoteWait() {
        externalWaits += 1
        if remoteWaits == 0 { ev_ref(loop) }
        remoteWaits += 1
    }

    func endRemoteWait() {
        externalWaits -= 1
        remoteWaits -= 1
        if remoteWaits == 0 { ev_unref(loop) }
    }
}
