// Waking parked greenlets, normally or with an interrupt (a kill, a
// timeout, a scope's cancellation), and which interrupt a greenlet may
// receive now (shields). See the design comment in Hub.swift; the run
// queue's unretained entries are sound by its invariant 2.
import CGreenContext
import CLibev
import Glibc

extension Hub {
    /// Makes a parked greenlet ready: its blocking call will return
    /// normally. Does nothing to a greenlet that is not parked.
    @inline(__always)
    func ready(_ g: AnyGreenlet) {
        wake(g, reason: .normal)
    }

    /// Makes a parked greenlet ready with an interrupt to throw.
    func wakeInterrupted(_ g: AnyGreenlet) {
        wake(g, reason: .interrupt)
    }

    @inline(__always)
    func wake(_ g: AnyGreenlet, reason: AnyGreenlet.WakeReason) {
        guard g.state == .parked else { return }
        g.move(to: .ready)
        g.wakeReason = reason
        g.queued = true
        parkedCount -= 1
        runQueue.append(Unmanaged.passUnretained(g))
    }

    /// Stores a kill for `g` and wakes it if parked.
    func interrupt(_ g: AnyGreenlet, kill error: any Error, force: Bool = false) {
        g.pendingKill = AnyGreenlet.Interrupt(error: error, shieldLevel: force ? Int.max : 0,
                                              source: nil, sequence: 0)
        if isDeliverable(g.pendingKill!, to: g) { wakeInterrupted(g) }
    }

    /// Stores a cancellation from a timeout or a scope and wakes `g` if
    /// it may receive it now. Every cancellation is kept until it is
    /// thrown or withdrawn: one held by a shield must not hide one raised
    /// inside the shield, and it is still thrown once the shield ends.
    func interrupt(_ g: AnyGreenlet, cancel: AnyGreenlet.Interrupt) {
        let x = g.madeExtras
        if x.pendingCancels == nil { x.pendingCancels = [] }
        x.pendingCancels!.append(cancel)
        if isDeliverable(cancel, to: g) { wakeInterrupted(g) }
    }

    /// Withdraws the pending cancellations raised by `source`.
    func withdrawCancel(_ g: AnyGreenlet, source: ObjectIdentifier) {
        guard let x = g.extras, x.pendingCancels != nil else { return }
        x.pendingCancels!.removeAll { $0.source == source }
        if x.pendingCancels!.isEmpty { x.pendingCancels = nil }
    }

    func nextSequence() -> UInt64 {
        timeoutSequence += 1
        return timeoutSequence
    }

    @inline(__always)
    func isDeliverable(_ i: AnyGreenlet.Interrupt, to g: AnyGreenlet) -> Bool {
        i.shieldLevel >= g.shieldDepth
    }

    /// The interrupt `g` must throw now, if any, removed from `g`.
    @inline(__always)
    func takeDeliverable(_ g: AnyGreenlet) -> (any Error)? {
        if !g.hasPendingInterrupt { return nil }
        return takeDeliverableSlow(g)
    }

    // Out of line: inlined, its interrupt (an indirect result) would take
    // a slot in the frame of every blocking call, which a parked compact
    // greenlet keeps in its image.
    @inline(never)
    func takeDeliverableSlow(_ g: AnyGreenlet) -> (any Error)? {
        guard let (interrupt, isKill) = takeDeliverableInterrupt(g) else { return nil }
        g.lastDelivered = (interrupt, isKill)
        return interrupt.error
    }

    func takeDeliverableInterrupt(_ g: AnyGreenlet) -> (AnyGreenlet.Interrupt, Bool)? {
        guard let x = g.extras else { return nil }
        if let cancels = x.pendingCancels {
            // Of the deliverable ones, the earliest started (outermost)
            // wins; the others are withdrawn by their owners as the error
            // unwinds through them.
            var best: Int?
            for i in cancels.indices where isDeliverable(cancels[i], to: g) {
                if best == nil || cancels[i].sequence < cancels[best!].sequence { best = i }
            }
            if let best {
                let c = x.pendingCancels!.remove(at: best)
                if x.pendingCancels!.isEmpty { x.pendingCancels = nil }
                return (c, false)
            }
        }
        if let k = x.pendingKill, isDeliverable(k, to: g) {
            x.pendingKill = nil
            return (k, true)
        }
        return nil
    }

    /// Makes the interrupt `g` last threw pending again, to be thrown at
    /// its next blocking point: for calls that cannot throw it themselves
    /// (a `for` loop over a queue ends instead).
    func rearmLastInterrupt(_ g: AnyGreenlet) {
        guard let x = g.extras, let (interrupt, isKill) = x.lastDelivered else { return }
        x.lastDelivered = nil
        if isKill {
            if x.pendingKill == nil { x.pendingKill = interrupt }
        } else {
            if x.pendingCancels == nil { x.pendingCancels = [] }
            x.pendingCancels!.append(interrupt)
        }
    }
}
