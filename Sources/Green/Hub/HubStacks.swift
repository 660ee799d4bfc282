// A greenlet's stack and context life cycle: given when it first runs
// (a pooled dedicated stack, or the compact run stack), its life on that
// stack, and recycled right after its last switch.
//
// Unsafe parts: contexts and stacks are raw memory the hub owns (its free
// list, its pools); a context belongs to one greenlet from `prepare` to
// `recycle` (invariant 2 in Hub.swift). `runGreenlet` borrows its greenlet
// unretained: the hub's reference keeps it alive, and its stack is never
// unwound, so nothing retained may be left on it.
import CGreenContext
import CLibev
import Glibc

extension Hub {
    func recycle(_ dead: Unmanaged<AnyGreenlet>) {
        let g = dead.takeUnretainedValue()
        if let ctx = g.context {
            if ctx.pointee.shared != nil {
                green_context_compact_release(ctx)
            } else {
                green_stack_release(pool(for: g.stackSize), ctx.pointee.stack)
            }
            g.context = nil
            // Kept for reuse up to the stack pool's count of warm stacks;
            // beyond, freed: a burst of greenlets must not leave its
            // contexts behind, each pinning a page of the heap.
            if freeContextCount < Hub.freeContextLimit {
                ctx.pointee.next_free = freeContexts
                freeContexts = ctx
                freeContextCount += 1
            } else {
                green_context_destroy(ctx)
                ctx.deallocate()
            }
        }
        dead.release()
    }

    func pool(for stackSize: Int) -> OpaquePointer {
        if stackSize == 0 || stackSize == defaultPoolSize { return defaultPool }
        if let p = stackPools[stackSize] { return p }
        let p = green_stack_pool_create(stackSize, -1)!
        green_stack_pool_set_idle_limit(p, Hub.warmStackLimit)
        stackPools[stackSize] = p
        return p
    }

    /// Gives a greenlet that is about to run for the first time its stack
    /// and context. On failure the greenlet finishes with the error.
    @inline(never)
    func prepare(_ g: AnyGreenlet) -> Bool {
        let entry: green_entry_fn = { arg in
            let (from, to) = Hub.runGreenlet(arg!)
            green_context_exit_to(from, to)
            // A finished greenlet is never switched back to.
            abort()
        }
        let arg = Unmanaged.passUnretained(g).toOpaque()
        let ctx: UnsafeMutablePointer<green_context>
        if g.isCompact {
            guard let shared = compactRunStack(for: g) else { return false }
            ctx = takeContext()
            // Cannot fail once the run stack exists (compact builds only).
            let rc = green_context_init_compact(ctx, shared, entry, arg)
            precondition(rc == 0, "swift-green: green_context_init_compact failed")
        } else {
            let pool = pool(for: g.stackSize)
            guard let stack = green_stack_acquire(pool) else {
                let err = errno
                noStack(for: g, size: Int(green_stack_pool_stack_size(pool)), errno: err)
                return false
            }
            ctx = takeContext()
            green_context_init(ctx, contextKind, stack, entry, arg)
        }
        if g.customName == nil {
            green_context_set_identity(ctx, g.id, nil, 0)
        } else {
            g.copyName(into: ctx)
        }
        g.context = ctx
        return true
    }

    /// `g` cannot start: no stack of `size` bytes (`errno` says why). It
    /// finishes with that error without running.
    func noStack(for g: AnyGreenlet, size: Int, errno err: Int32) {
        g.move(to: .pending)
        finishUnstarted(g, failure: GreenError.stackAllocationFailed(greenlet: g.name, stackSize: size, errno: err))
    }

    /// A context from the free list, or a new one.
    @inline(__always)
    func takeContext() -> UnsafeMutablePointer<green_context> {
        if let c = freeContexts {
            freeContexts = c.pointee.next_free
            freeContextCount -= 1
            return c
        }
        let c = UnsafeMutablePointer<green_context>.allocate(capacity: 1)
        c.initialize(to: green_context())
        return c
    }

    /// The hub's shared run stack for compact greenlets (the default stack
    /// size, guarded), made the first time; on failure `g` finishes with
    /// the error.
    func compactRunStack(for g: AnyGreenlet) -> UnsafeMutablePointer<green_shared_stack>? {
        if let sharedStack { return sharedStack }
        guard let shared = green_shared_stack_create(defaultPoolSize) else {
            let err = errno
            noStack(for: g, size: defaultPoolSize, errno: err)
            return nil
        }
        shared.pointee.report_limit = pendingCompactReportLimit
        sharedStack = shared
        GreenDiagnostics.refreshCompactReportRoute()
        return shared
    }

    /// The life of a spawned greenlet, on its own stack. Returns the
    /// contexts of the final switch; the caller makes it with no Swift
    /// reference alive on this stack (it is never unwound).
    ///
    /// Inlined into the entry function, whose frame stays on the stack
    /// for the greenlet's whole life (in a parked compact greenlet's
    /// image) with `runBody`'s: what happens once, before and after the
    /// body, is out of line.
    @inline(__always)
    static func runGreenlet(_ arg: UnsafeMutableRawPointer)
        -> (UnsafeMutablePointer<green_context>, UnsafeMutablePointer<green_context>) {
        // Borrowed, not retained: the hub's reference keeps it alive, and
        // nothing retained here may be left when this stack is abandoned.
        let g = Unmanaged<AnyGreenlet>.fromOpaque(arg)
        if g._withUnsafeGuaranteedRef({ $0.hub.starts($0) }) {
            g._withUnsafeGuaranteedRef { $0.runBody() }
        }
        return g._withUnsafeGuaranteedRef { $0.hub.finish($0) }
    }

    /// What a greenlet does first on its own stack: recycles the one that
    /// finished before, and tells whether it runs its body (not if it was
    /// killed after it was queued: then it has recorded the kill as its
    /// outcome).
    @inline(never)
    func starts(_ g: AnyGreenlet) -> Bool {
        afterSwitch()
        guard g.hasPendingInterrupt, let kill = g.pendingKill, g.shieldDepth == 0 else { return true }
        g.pendingKill = nil
        g.recordUnstarted(kill.error)
        return false
    }

    /// The end of `g`, on its own stack: it is finished, its joiners are
    /// woken and the next greenlet claimed. Returns the contexts of the
    /// final switch.
    @inline(never)
    func finish(_ g: AnyGreenlet)
        -> (UnsafeMutablePointer<green_context>, UnsafeMutablePointer<green_context>) {
        g.move(to: .finished)
        if let x = g.extras {
            x.pendingKill = nil
            x.pendingCancels = nil
            x.lastDelivered = nil
            x.locals = nil
        }
        removeLive(g)
        g.notifyFinished()
        finishedPending = Unmanaged.passUnretained(g)
        let nextCtx = nextToRun()._withUnsafeGuaranteedRef { next in
            next.move(to: .running)
            current = next
            return next.context!
        }
        green_monitor_switched(monitor, nextCtx)
        return (g.context!, nextCtx)
    }
}
