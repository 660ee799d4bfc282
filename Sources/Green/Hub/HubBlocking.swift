// What every blocking call does: check for an interrupt, park, yield,
// sleep on a timer.
//
// Unsafe parts: the run queue and timers hold the parked greenlet
// unretained (invariant 2 in Hub.swift); a sleep's timer is the greenlet's
// wait record, in its context, and stopped before `sleep` returns
// (invariant 4).
import CGreenContext
import CLibev
import Glibc

extension Hub {
    /// Throws a pending interrupt of the calling greenlet, if any: the
    /// check every blocking call makes before it blocks.
    @inline(__always)
    func checkpoint(_ g: AnyGreenlet) throws {
        if let e = takeDeliverable(g) { throw e }
    }

    /// Throws what a blocking call by `g` would throw before it parks: a
    /// pending interrupt, or `GreenError.blockingCallOnHub` on the hub's own
    /// context. Every blocking call makes this check first; `park` and
    /// `yield` make it themselves.
    @inline(__always)
    func checkMayBlock(_ g: AnyGreenlet, in what: StaticString) throws {
        if ObjectIdentifier(g) == hubGreenletID { throw blockingCallOnHub(what) }
        if let e = takeDeliverable(g) { throw e }
    }

    /// Memory for the record `g`'s blocking call keeps while it is parked
    /// and others write into (a wait-list node, a timer, an fd watcher; at
    /// most `GREEN_WAIT_RECORD_BYTES`): its context's wait record, where
    /// it is neither on the stack (a compact greenlet's is copied away
    /// while it is parked) nor allocated. A wait inside a wait, which the
    /// runtime makes none of, would find it taken and get heap memory.
    /// Give it back with `releaseWaitRecord`, the memory deinitialized.
    @inline(__always)
    func takeWaitRecord<T>(_ type: T.Type, for g: AnyGreenlet) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.size <= Int(GREEN_WAIT_RECORD_BYTES) && MemoryLayout<T>.alignment <= 8,
                     "swift-green: a wait record outgrew green_context.wait_record")
        let ctx = g.context.unsafelyUnwrapped
        guard ctx.pointee.wait_record_busy == 0 else { return .allocate(capacity: 1) }
        ctx.pointee.wait_record_busy = 1
        return green_context_wait_record(ctx).bindMemory(to: T.self, capacity: 1)
    }

    /// Gives back what `takeWaitRecord` returned for `g`.
    @inline(__always)
    func releaseWaitRecord<T>(_ record: UnsafeMutablePointer<T>, of g: AnyGreenlet) {
        let ctx = g.context.unsafelyUnwrapped
        if UnsafeMutableRawPointer(record) == green_context_wait_record(ctx) {
            ctx.pointee.wait_record_busy = 0
        } else {
            record.deallocate()
        }
    }

    /// The error of a blocking call made on the hub's own context, built
    /// out of line (the string would take slots in every blocking call's
    /// frame).
    @inline(never)
    func blockingCallOnHub(_ what: StaticString) -> GreenError {
        GreenError.blockingCallOnHub("\(what)")
    }

    /// Parks the calling greenlet `g` until `ready(g)` or an interrupt.
    /// Throws the interrupt when woken by one; otherwise returns, normally
    /// because `ready(g)` was called. It may also return when an interrupt
    /// woke `g` and was withdrawn before `g` ran (a cancelled timeout):
    /// every caller loops on its own condition and parks again, after
    /// re-checking what it waits for. (Parking again right here could miss
    /// a hand-off that skipped `g` while it looked about to leave.) The
    /// caller registered `g` with whatever will wake it and unregisters it
    /// (in a `defer`) whatever happens.
    func park(_ g: AnyGreenlet, on what: StaticString) throws {
        try checkMayBlock(g, in: what)
        g.waitingOn = what
        g.parkedSince = loopTime
        g.move(to: .parked)
        parkedCount += 1
        switchAway(from: g)
        if g.wakeReason == .interrupt, let e = takeDeliverable(g) { throw e }
    }

    /// Lets every other ready greenlet run once, then returns: `sleep(0)`.
    func yield() throws {
        let g: AnyGreenlet = current
        try checkMayBlock(g, in: "sleep(0)")
        g.move(to: .ready)
        g.wakeReason = .normal
        g.queued = true
        runQueue.append(Unmanaged.passUnretained(g))
        switchAway(from: g)
        if let e = takeDeliverable(g) { throw e }
    }

    /// Parks the calling greenlet until the loop time reaches `deadline`.
    func sleep(until deadline: Double) throws {
        let g: AnyGreenlet = current
        try checkpoint(g)
        // No `ev_now_update` here: libev places the timer at its cached
        // monotonic time plus `deadline - ev_now`, and its cached wall and
        // monotonic times were read together, so the deadline lands right
        // however stale they are. Refreshing them per call would re-measure
        // the offset between the two clocks each time, and deadlines a
        // microsecond apart set by different greenlets could swap.
        // libev writes into every timer it moves in its heap: the timer is
        // the greenlet's wait record, not on its stack (see
        // `takeWaitRecord`).
        let timer = takeWaitRecord(ev_timer.self, for: g)
        timer.initialize(to: ev_timer())
        defer { releaseWaitRecord(timer, of: g) }
        green_ev_timer_init(timer, { _, w, _ in
            let g = Unmanaged<AnyGreenlet>.fromOpaque(w!.pointee.data).takeUnretainedValue()
            g.hub.ready(g)
        }, deadline - now, 0)
        timer.pointee.data = Unmanaged.passUnretained(g).toOpaque()
        startTimer(timer, after: deadline - now)
        defer { stopTimer(timer) }
        repeat {
            try park(g, on: "sleep")
        } while isTimerPending(timer)
    }
}
