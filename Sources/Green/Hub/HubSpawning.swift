// Spawning: a greenlet's identity, its place in the run queue or behind a
// start timer, and the list of live greenlets (for deadlock reports and
// dumps).
//
// Unsafe parts: `schedule(new:)` takes the hub's one retain on a greenlet,
// and the run queue, the live list and the start timer's `data` refer to
// it unretained until it is dropped (invariant 2 in Hub.swift); a start
// timer is the greenlet's, freed when it fires or the greenlet finishes.
import CGreenContext
import CLibev
import Glibc

extension Hub {
    /// A new greenlet's id and its parent's. Not generic on purpose: the
    /// generic part of spawning is inlined into the caller, where `Value`
    /// is known, so no generic metadata is looked up per spawn.
    @usableFromInline
    func newGreenletIdentity() -> (id: UInt64, parentID: UInt64) {
        if nextLocalID == localIDLimit {
            // Ids are process-unique; a hub takes them from the shared
            // counter in blocks so that spawning needs no atomic operation.
            nextLocalID = Hub.nextGreenletID.wrappingAdd(Hub.idBlock, ordering: .relaxed).oldValue
            localIDLimit = nextLocalID + Hub.idBlock
        }
        let id = nextLocalID
        nextLocalID += 1
        return (id, withCurrentGreenlet { $0.id })
    }

    /// Runs `body` with the running greenlet, borrowed (not retained).
    @inline(__always)
    func withCurrentGreenlet<R>(_ body: (AnyGreenlet) throws -> R) rethrows -> R {
        try Unmanaged.passUnretained(current!)._withUnsafeGuaranteedRef(body)
    }

    /// Takes the hub's reference on `g` and queues its start.
    @usableFromInline
    func schedule(new g: AnyGreenlet) {
        _ = Unmanaged.passUnretained(g).retain()
        addLive(g)
        g.move(to: .pending)
        g.queued = true
        runQueue.append(Unmanaged.passUnretained(g))
    }

    /// Takes the hub's reference on `g` and starts it after `seconds`.
    @usableFromInline
    func schedule(new g: AnyGreenlet, after seconds: Double) {
        _ = Unmanaged.passUnretained(g).retain()
        addLive(g)
        g.move(to: .pending)
        let timer = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
        timer.initialize(to: ev_timer())
        green_ev_timer_init(timer, { _, w, _ in
            let g = Unmanaged<AnyGreenlet>.fromOpaque(w!.pointee.data).takeUnretainedValue()
            g.hub.startTimerFired(g)
        }, max(0, seconds), 0)
        timer.pointee.data = Unmanaged.passUnretained(g).toOpaque()
        g.startTimer = timer
        ev_now_update(loop)
        startTimer(timer, after: max(0, seconds))
    }

    func startTimerFired(_ g: AnyGreenlet) {
        freeStartTimer(g)
        g.queued = true
        runQueue.append(Unmanaged.passUnretained(g))
    }

    func freeStartTimer(_ g: AnyGreenlet) {
        guard let t = g.startTimer else { return }
        stopTimer(t)
        t.deallocate()
        g.startTimer = nil
    }

    /// Finishes a greenlet that never ran (killed, or its stack could not
    /// be allocated): it keeps `failure` as its outcome and never runs.
    func finishUnstarted(_ g: AnyGreenlet, failure: any Error) {
        guard g.state == .pending else { return }
        freeStartTimer(g)
        g.recordUnstarted(failure)
        g.move(to: .finished)
        removeLive(g)
        g.extras?.locals = nil
        g.notifyFinished()
        // A queued entry keeps the hub's reference until it is popped.
        if !g.queued { Unmanaged.passUnretained(g).release() }
    }

    @inline(__always)
    func addLive(_ g: AnyGreenlet) {
        spawnedGreenlets &+= 1
        liveGreenlets += 1
        green_monitor_set_others(monitor, Int32(truncatingIfNeeded: liveGreenlets))
        let u = Unmanaged.passUnretained(g)
        g.liveNext = liveHead
        if let head = liveHead { head._withUnsafeGuaranteedRef { $0.livePrev = u } }
        liveHead = u
    }

    @inline(__always)
    func removeLive(_ g: AnyGreenlet) {
        liveGreenlets -= 1
        green_monitor_set_others(monitor, Int32(truncatingIfNeeded: liveGreenlets))
        let next = g.liveNext, prev = g.livePrev
        if let next { next._withUnsafeGuaranteedRef { $0.livePrev = prev } }
        if let prev {
            prev._withUnsafeGuaranteedRef { $0.liveNext = next }
        } else {
            liveHead = next
        }
        g.liveNext = nil
        g.livePrev = nil
    }

    /// Calls `body` with every spawned greenlet that has not finished,
    /// newest first.
    func forEachLive(_ body: (AnyGreenlet) -> Void) {
        var cursor = liveHead
        while let u = cursor {
            u._withUnsafeGuaranteedRef { g in
                cursor = g.liveNext
                body(g)
            }
        }
    }
}
