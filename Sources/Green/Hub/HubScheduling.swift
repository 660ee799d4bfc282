// Switching: from a greenlet straight to the next ready one, or to the
// hub greenlet, whose loop polls libev and runs async jobs between
// greenlets. See the design comment in Hub.swift; the unretained
// greenlets here are sound by its invariants 1 and 2.
import CGreenContext
import CLibev
import Glibc

extension Hub {
    /// Leaves `from` (the running greenlet, whose new state the caller
    /// set) and runs the next ready greenlet, or the hub. Returns when
    /// something switches back to `from`.
    ///
    /// The scheduling paths pass greenlets around as `Unmanaged` and borrow
    /// them with `_withUnsafeGuaranteedRef`: the hub's own reference keeps
    /// them alive, and a retain/release pair per switch would cost more
    /// than the switch itself.
    @inline(__always)
    func switchAway(from: AnyGreenlet) {
        let fromCtx = from.context!
        guard let nextCtx = claimNext(after: from) else {
            from.move(to: .running)
            return
        }
        green_monitor_switched(monitor, nextCtx)
        green_context_switch(fromCtx, nextCtx)
        afterSwitch()
    }

    /// Makes the next greenlet to run the current one and returns its
    /// context; nil when that is `from` itself (nothing else to run).
    @inline(__always)
    func claimNext(after from: AnyGreenlet) -> UnsafeMutablePointer<green_context>? {
        nextToRun()._withUnsafeGuaranteedRef { next in
            if next === from { return nil }
            next.move(to: .running)
            current = next
            return next.context
        }
    }

    /// The next greenlet to run, with its context prepared: the head of
    /// the run queue while budget remains, else the hub.
    @inline(__always)
    func nextToRun() -> Unmanaged<AnyGreenlet> {
        while budget > 0, let entry = runQueue.popFirstUnmanaged() {
            let verdict = entry._withUnsafeGuaranteedRef { n -> UInt8 in
                n.queued = false
                if n.state == .finished { return 1 }
                if n.context == nil && !prepare(n) { return 2 }
                return 0
            }
            if verdict == 0 {
                budget -= 1
                return entry
            }
            // Killed before it started: drop the hub's reference. (A
            // failed prepare already did, through finishUnstarted.)
            if verdict == 1 { entry.release() }
        }
        return Unmanaged.passUnretained(hubGreenletRef)
    }

    /// Recycles the greenlet that finished just before this context was
    /// switched to. Every context calls it right after a switch returns.
    @inline(__always)
    func afterSwitch() {
        if let dead = finishedPending {
            finishedPending = nil
            recycle(dead)
        }
    }

    /// The hub greenlet's body: poll the loop, run what became ready.
    func runLoop() -> Never {
        afterSwitch()
        while true {
            if runQueue.isEmpty && jobsHead == executorJobs.count {
                // On a virtual clock, nothing to run and nothing waiting on
                // the world outside: the clock jumps to the next timer.
                if virtualClock != nil && jumpVirtualClock() { continue }
                // Waiting for events is idle, not blocked.
                green_monitor_set_idle(monitor, 1)
                if virtualClock != nil {
                    ev_now_update(loop)
                    armVirtualWakeUp()
                }
                let before = ev_now(loop)
                let active = ev_run(loop, Int32(EVRUN_ONCE))
                green_monitor_set_idle(monitor, 0)
                if virtualClock != nil {
                    virtualClockWaited(since: before)
                    fireDueVirtualTimers()
                }
                if runQueue.isEmpty && active == 0 { wakeMainBlockedForever() }
                workSincePoll = 0
            } else if workSincePoll >= Hub.runBudget {
                // I/O and timers are polled at least every `runBudget`
                // greenlet switches and async jobs, not at every turn: a
                // job that readies a greenlet (an awaitAsync round trip)
                // costs no system call.
                ev_run(loop, Int32(EVRUN_NOWAIT))
                if virtualClock != nil { fireDueVirtualTimers() }
                workSincePoll = 0
            }
            budget = Hub.runBudget
            loopTime = now
            // Reports a switch queued (it could not make them itself).
            if let shared = sharedStack, shared.pointee.pending_count != 0 { reportLargeCompactImages(shared) }
            if jobsHead < executorJobs.count { workSincePoll += runExecutorJobs() }
            let hubCtx = hubGreenletRef.context!
            guard let nextCtx = claimNext(after: hubGreenletRef) else { continue }
            green_monitor_switched(monitor, nextCtx)
            green_context_switch(hubCtx, nextCtx)
            afterSwitch()
            workSincePoll += Hub.runBudget - budget
        }
    }

    /// Nothing can wake any parked greenlet: throw into the main greenlet
    /// rather than hang.
    func wakeMainBlockedForever() {
        let main: AnyGreenlet = mainGreenlet
        guard main.state == .parked else { return }
        var others: [String] = []
        forEachLive { g in
            if g.state == .parked { others.append("\(g.name) in \(g.waitingOn)") }
        }
        let err = GreenError.wouldBlockForever(waitingOn: "\(main.waitingOn)", parked: others)
        interrupt(main, kill: err, force: true)
    }
}
