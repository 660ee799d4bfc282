// Delayed async jobs on the hub's libev timers: a hub's executor as a
// `SchedulingExecutor` (the toolchain's SPI of the custom-executors pitch).
//
// Swift Concurrency hands a job to be run later (the resumption of
// `Task.sleep`, a `Clock.sleep`) to the *default* executor's
// `enqueue(_:after:tolerance:clock:)`; when the main hub is that executor
// (`GreenExecutorFactory`), each such job becomes a one-shot `ev_timer` on
// the hub's loop, like a greenlet's `Green.sleep`, and joins the hub's job
// queue when it fires. Tolerance is ignored (libev has no leeway). A timer
// keeps the loop alive, as a sleeping greenlet does.
@_spi(ExperimentalScheduling) import _Concurrency
import CLibev
import Glibc

@_spi(ExperimentalScheduling)
extension HubExecutor: SchedulingExecutor {
    /// Runs `job` on the hub's thread once `delay` has passed. Any thread.
    /// Only clocks measured in `Swift.Duration` can be converted to the
    /// loop's time (the standard clocks are); another clock's job is a
    /// fatal error rather than one run at the wrong time.
    public func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration,
                                  tolerance: C.Duration?, clock: C) {
        guard let delay = delay as? Swift.Duration else {
            fatalError("swift-green: a delayed job on \(C.self), whose Duration is not Swift.Duration")
        }
        let (seconds, attoseconds) = delay.components
        queue.enqueue(UnownedJob(job), after: max(0, Double(seconds) + Double(attoseconds) * 1e-18))
    }
}

extension HubJobQueue {
    /// Queues `job` (a task job) when `seconds` have passed. Any thread:
    /// from another one the timer is started through the mailbox, for what
    /// remains of the delay by then.
    func enqueue(_ job: UnownedJob, after seconds: Double) {
        if onHubThread {
            DelayedJob.start(job, after: seconds, on: hub)
            return
        }
        let deadline = DelayedJob.monotonicNow() + seconds
        if !mailbox.post({ [self] in
            DelayedJob.start(job, after: deadline - DelayedJob.monotonicNow(), on: hub)
        }) {
            fatalError("swift-green: a delayed async job was sent to a hub whose thread has exited")
        }
    }
}

/// A job waiting for its timer. Hub thread only. The timer's `data` holds
/// the one retain on it, taken back when the timer fires; `hub` is
/// unretained, used only in `start` and the timer's callback, which runs
/// inside that hub's loop (invariant 3 in Hub.swift).
private final class DelayedJob {
    let job: UnownedJob
    let timer: UnsafeMutablePointer<ev_timer>
    unowned(unsafe) let hub: Hub

    private init(job: UnownedJob, hub: Hub) {
        self.job = job
        self.hub = hub
        timer = .allocate(capacity: 1)
        timer.initialize(to: ev_timer())
    }

    deinit { timer.deallocate() }

    /// Starts a one-shot timer that queues `job` on `hub` after `seconds`.
    static func start(_ job: UnownedJob, after seconds: Double, on hub: Hub) {
        let delayed = DelayedJob(job: job, hub: hub)
        green_ev_timer_init(delayed.timer, { _, w, _ in
            // One-shot: libev has stopped the timer already.
            let delayed = Unmanaged<DelayedJob>.fromOpaque(w!.pointee.data).takeRetainedValue()
            delayed.hub.executorJobs.append(HubJob(job: delayed.job, side: .task))
        }, max(0, seconds), 0)
        delayed.timer.pointee.data = Unmanaged.passRetained(delayed).toOpaque()
        // The loop's cached time may be a whole batch of work old: the
        // delay counts from now.
        ev_now_update(hub.loop)
        // In libev, or on the hub's virtual clock (`withVirtualTime`).
        hub.startTimer(delayed.timer, after: max(0, seconds))
    }

    static func monotonicNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
