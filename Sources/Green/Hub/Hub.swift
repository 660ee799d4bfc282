// The hub: one scheduler per OS thread.
//
// MODEL
//
// Every OS thread that uses a green API gets a hub on first use. The hub
// owns a libev loop, a FIFO run queue of ready greenlets, a pool of stacks
// and the thread's greenlets. Greenlets never move between threads.
//
// Three kinds of context take turns on a thread, one at a time:
//
//   * the thread's *main greenlet*: the stack the thread started on. Code
//     at top level is in it, so `try Green.sleep(1)` works without any
//     `run {}` wrapper;
//   * the *hub greenlet*, on its own stack, which runs the libev loop;
//   * spawned greenlets, each on a pooled stack.
//
// A greenlet gives up the CPU only inside a blocking call. It registers
// what should wake it (a timer, an fd watcher, a waiter list of an event or
// of another greenlet), marks itself parked and switches away. Whoever
// wakes it puts it on the run queue; nothing else ever resumes a parked
// greenlet. libev callbacks run on the hub's stack and only ever move
// greenlets to the run queue: no switch happens inside the loop.
//
// Switching away does not always go through the hub. The hub polls libev
// (without blocking when the run queue is not empty), then grants a budget
// of `Hub.runBudget` switches; a greenlet that blocks or yields while budget
// remains switches straight to the head of the run queue. So a yield costs
// one switch, not two, and the loop's `epoll_wait` is paid once per budget,
// while I/O and timers are still polled at least once every `runBudget`
// greenlet runs. When the queue is empty the hub blocks in the loop.
//
// Cancellation is an error delivered at a blocking point. `kill` and
// timeouts store an *interrupt* on the target; a parked target is woken
// with reason `.interrupt` and its blocking call throws. A target that is
// already ready, or running, throws at its next blocking point. A target
// woken normally (its event happened) returns normally even if an
// interrupt arrived meanwhile, so a wake-up that hands over a resource is
// never lost; the interrupt is thrown at the next blocking point.
//
// If the run queue is empty and libev has nothing active (no timer, no
// fd watcher, no cross-thread wake-up), nothing can ever wake any parked
// greenlet. The hub then throws `GreenError.wouldBlockForever` into the
// thread's main greenlet instead of hanging, as gevent's LoopExit does.
//
// A finished greenlet cannot free the stack it is running on. It records
// itself in `finishedPending` and switches away; the next context to run,
// right after its switch returns, recycles the stack and context.
//
// Invariants relied on by the `unsafe` parts: only the hub's own thread
// touches the hub and its greenlets; a greenlet's context and stack exist
// from its first switch-in until it finished and was recycled; the hub
// holds one retain on every spawned greenlet until then.
import CGreenContext
import CLibev
import Glibc
import Synchronization

/// The per-thread scheduler. Created on first use of a green API on a
/// thread; confined to that thread.
public final class Hub {
    /// Switches a greenlet may make straight to the next ready greenlet
    /// before control goes back to the hub to poll I/O and timers.
    static let runBudget = 64

    /// Default usable stack size for new greenlets: 256 KiB, or
    /// GREEN_STACK_SIZE (bytes) from the environment. Pages cost memory
    /// only once touched.
    public static var defaultStackSize: Int {
        get {
            let v = configuredStackSize.load(ordering: .relaxed)
            if v > 0 { return v }
            if let env = getenv("GREEN_STACK_SIZE"), let n = Int(String(cString: env)), n > 0 { return n }
            return 256 * 1024
        }
        set { configuredStackSize.store(newValue, ordering: .relaxed) }
    }
    private static let configuredStackSize = Atomic<Int>(0)
    static let nextGreenletID = Atomic<UInt64>(1)
    static let idBlock: UInt64 = 256
    @exclusivity(unchecked) var nextLocalID: UInt64 = 0
    @exclusivity(unchecked) var localIDLimit: UInt64 = 0

    let loop: OpaquePointer
    /// The blocked-hub monitor's view of this hub (see `HubMonitor`).
    let monitor: UnsafeMutablePointer<green_hub_monitor>
    /// The hub's time at the last loop pass: a clock dumps may read
    /// without a call.
    @exclusivity(unchecked) var loopTime: Double = 0
    /// What virtual time has added to libev's clock (see VirtualTime.swift):
    /// 0 until a virtual clock first jumps; it never goes back, so `now`
    /// stays monotonic after the virtual clock ends.
    @exclusivity(unchecked) var timeOffset: Double = 0
    /// The virtual clock while `withVirtualTime` runs on this hub.
    @exclusivity(unchecked) var virtualClock: VirtualClock?
    /// Greenlets waiting on the world outside the hub (an fd, another
    /// thread) and active signal handlers: while there are any, a virtual
    /// clock does not jump.
    @exclusivity(unchecked) var externalWaits = 0
    /// This hub's entry in `HubRegistry` (for dumps of every hub).
    private var registryID = 0
    /// The hub's number, unique in the process: "hub N" in greenlet dumps,
    /// the `hub` metadata of diagnostics and the `hub` dimension of
    /// `GreenMetrics`. Any thread.
    public var id: Int { registryID }

    /// The calling thread's hub's `id`, without creating a hub (nil if
    /// the thread has none, or no longer).
    static var existingID: Int? {
        guard let p = green_hub_get() else { return nil }
        return Unmanaged<Hub>.fromOpaque(p)._withUnsafeGuaranteedRef { $0.id }
    }
    let contextKind: Int32
    public let thread: pthread_t
    // Set at the end of init (they need `self`); never nil afterwards.
    private(set) var mainGreenlet: AnyGreenlet!
    private(set) var hubGreenlet: AnyGreenlet!
    @exclusivity(unchecked) unowned(unsafe) var hubGreenletRef: AnyGreenlet!
    /// The hub greenlet's identity, compared without loading a reference.
    @exclusivity(unchecked) private var hubGreenletID = ObjectIdentifier(Hub.self)
    @exclusivity(unchecked) var stackPools: [Int: OpaquePointer] = [:]
    private let defaultPool: OpaquePointer
    /// The default stack size when the hub was made: its pool's, and its
    /// compact run stack's.
    let defaultPoolSize: Int

    // Unretained: the hub holds every live greenlet (and its own two) already.
    @exclusivity(unchecked) unowned(unsafe) var current: AnyGreenlet!
    @exclusivity(unchecked) var runQueue = RunQueue()
    @exclusivity(unchecked) var budget = 0
    @exclusivity(unchecked) var finishedPending: Unmanaged<AnyGreenlet>?
    /// Contexts of finished greenlets, linked through `next_free`.
    @exclusivity(unchecked) var freeContexts: UnsafeMutablePointer<green_context>?
    @exclusivity(unchecked) var freeContextCount = 0
    static let freeContextLimit = 1024
    /// The run stack of compact greenlets, made with the first one.
    @exclusivity(unchecked) var sharedStack: UnsafeMutablePointer<green_shared_stack>?
    private var pendingCompactReportLimit = 64 * 1024
    /// Spawned greenlets that have not finished.
    @exclusivity(unchecked) public private(set) var liveGreenlets = 0
    /// Greenlets ever spawned on this hub (for its figures).
    @exclusivity(unchecked) var spawnedGreenlets: UInt64 = 0
    /// libev io watchers started by greenlet waits on fds and not yet let
    /// go (for its figures).
    @exclusivity(unchecked) var fdWatches = 0
    /// Greenlets currently parked (for deadlock reports).
    @exclusivity(unchecked) var parkedCount = 0
    @exclusivity(unchecked) var timeoutSequence: UInt64 = 0
    /// Spawned, unfinished greenlets, newest first (for deadlock reports).
    @exclusivity(unchecked) var liveHead: Unmanaged<AnyGreenlet>?
    /// Where other threads post wake-ups; see RemoteWake.swift.
    let mailbox: HubMailbox
    /// Async jobs for the hub's executor, oldest first from `jobsHead`
    /// (see HubExecutor.swift).
    @exclusivity(unchecked) var executorJobs: [HubJob] = []
    @exclusivity(unchecked) var jobsHead = 0
    /// Greenlet switches and async jobs since the loop last polled.
    @exclusivity(unchecked) var workSincePoll = 0
    /// The hub as a Swift executor; made on first use.
    @exclusivity(unchecked) var executorStorage: HubExecutor?
    private let asyncWatcher: UnsafeMutablePointer<ev_async>
    /// This hub's connections waiting on their peers (see
    /// `IdleConnections`).
    public private(set) lazy var idleConnections = IdleConnections()
    /// Greenlets waiting for another thread (they keep the loop alive).
    @exclusivity(unchecked) private var remoteWaits = 0

    /// The calling thread's hub, created on first use.
    public static var current: Hub {
        if let p = green_hub_get() {
            return Unmanaged<Hub>.fromOpaque(p).takeUnretainedValue()
        }
        return createForThisThread()
    }

    /// Runs `body` with the calling thread's hub without retaining it:
    /// the thread-local slot owns it for the thread's lifetime.
    @inline(__always) @usableFromInline
    static func withCurrent<R>(_ body: (Hub) throws -> R) rethrows -> R {
        if let p = green_hub_get() {
            return try Unmanaged<Hub>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
        }
        return try body(createForThisThread())
    }

    private static let destroyKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { p in
            guard let p else { return }
            green_hub_set(nil)
            // The thread is going: the monitor must not signal it again,
            // even if something keeps the hub object alive a while.
            Unmanaged<Hub>.fromOpaque(p)._withUnsafeGuaranteedRef {
                green_monitor_unregister($0.monitor)
                HubRegistry.unregister($0.registryID)
            }
            Unmanaged<Hub>.fromOpaque(p).release()
        }
        return key
    }()

    @usableFromInline
    static func createForThisThread() -> Hub {
        let hub = Hub()
        let opaque = Unmanaged.passRetained(hub).toOpaque()
        green_hub_set(opaque)
        pthread_setspecific(destroyKey, opaque)
        return hub
    }

    private init() {
        guard let loop = ev_loop_new(UInt32(EVFLAG_AUTO)) else {
            fatalError("swift-green: \(GreenError.loopCreationFailed)")
        }
        self.loop = loop
        thread = pthread_self()
        monitor = .allocate(capacity: 1)
        green_monitor_register(monitor)
        asyncWatcher = .allocate(capacity: 1)
        asyncWatcher.initialize(to: ev_async())
        mailbox = HubMailbox(loop: loop, watcher: asyncWatcher, thread: thread)
        contextKind = green_context_default_kind()
        defaultPoolSize = Hub.defaultStackSize
        guard let pool = green_stack_pool_create(defaultPoolSize, -1) else {
            fatalError("swift-green: could not create the stack pool")
        }
        defaultPool = pool
        stackPools[defaultPoolSize] = pool
        _ = green_overflow_handler_install_for_thread()

        let main = AnyGreenlet(hub: self, id: 0, parentID: 0, stackSize: 0, stackMode: .dedicated)
        mainGreenlet = main
        current = main
        main.id = newGreenletIdentity().id
        main.customName = "main"
        main.move(to: .running)
        let mainCtx = UnsafeMutablePointer<green_context>.allocate(capacity: 1)
        green_context_init_current(mainCtx, contextKind)
        main.context = mainCtx
        main.copyName(into: mainCtx)
        green_current_context_set(mainCtx)

        let hubGreenlet = AnyGreenlet(hub: self, id: 0, parentID: 0, stackSize: 0, stackMode: .dedicated)
        self.hubGreenlet = hubGreenlet
        hubGreenletID = ObjectIdentifier(hubGreenlet)
        hubGreenletRef = hubGreenlet
        hubGreenlet.customName = "hub"
        guard let hubStack = green_stack_acquire(pool) else {
            fatalError("swift-green: could not allocate the hub's stack (errno \(errno))")
        }
        let hubCtx = UnsafeMutablePointer<green_context>.allocate(capacity: 1)
        hubCtx.initialize(to: green_context())
        green_context_init(hubCtx, contextKind, hubStack, { arg in
            // Borrowed, not retained: this stack is never unwound, and a
            // reference held here would keep the hub alive past its
            // thread's exit.
            Unmanaged<Hub>.fromOpaque(arg!)._withUnsafeGuaranteedRef { hub -> Void in hub.runLoop() }
        }, Unmanaged.passUnretained(self).toOpaque())
        hubGreenlet.context = hubCtx
        hubGreenlet.copyName(into: hubCtx)
        hubGreenlet.move(to: .ready)

        green_ev_async_init(asyncWatcher) { loop, w, _ in
            let hub = Unmanaged<Hub>.fromOpaque(w!.pointee.data).takeUnretainedValue()
            let (jobs, executorJobs) = hub.mailbox.takeAll()
            for job in jobs { job() }
            hub.executorJobs.append(contentsOf: executorJobs)
        }
        asyncWatcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        ev_async_start(loop, asyncWatcher)
        // The watcher alone must not keep the loop alive (deadlock reports);
        // `beginRemoteWait` counts the greenlets that do wait on it.
        ev_unref(loop)
        loopTime = ev_now(loop) + timeOffset
        registryID = HubRegistry.register(mailbox, thread: thread)
        green_monitor_set_tag(monitor, UInt64(registryID))
        BlockedHubReport.installSink()
    }

    deinit {
        // Thread exit. Greenlets still parked here are abandoned, as in
        // gevent: nothing can run them any more. Their stacks go with the
        // pools; references held on those stacks are leaked.
        if let dead = finishedPending { finishedPending = nil; recycle(dead) }
        executorStorage?.hubGone()
        mailbox.close()
        ev_ref(loop)
        ev_async_stop(loop, asyncWatcher)
        asyncWatcher.deallocate()
        while let ctx = freeContexts {
            freeContexts = ctx.pointee.next_free
            green_context_destroy(ctx)
            ctx.deallocate()
        }
        // Parked compact greenlets' stacks are heap images: freed here, as
        // dedicated stacks go with their pools.
        var cursor = liveHead
        while let u = cursor {
            let g = u.takeUnretainedValue()
            if let ctx = g.context, ctx.pointee.shared != nil { green_context_compact_release(ctx) }
            cursor = g.liveNext
        }
        if let shared = sharedStack { green_shared_stack_destroy(shared) }
        if let ctx = hubGreenlet.context { green_context_destroy(ctx); ctx.deallocate() }
        if let ctx = mainGreenlet.context { green_context_destroy(ctx); ctx.deallocate() }
        hubGreenlet.context = nil
        mainGreenlet.context = nil
        for (_, pool) in stackPools { green_stack_pool_destroy(pool) }
        ev_loop_destroy(loop)
        green_monitor_unregister(monitor)
        HubRegistry.unregister(registryID)
        monitor.deallocate()
    }

    // MARK: - Time

    /// The loop's notion of now, as of the last poll or `updateNow()`:
    /// seconds since the epoch (libev's `ev_now`), plus whatever a virtual
    /// clock has skipped (see `withVirtualTime`). Deadlines for
    /// `sleep(until:)` are on this clock; libev keeps timers themselves on
    /// the monotonic clock, so a wall-clock step does not reorder them.
    public var now: Double {
        if let clock = virtualClock { return clock.now }
        return ev_now(loop) + timeOffset
    }

    /// Refreshes `now` from the clock.
    public func updateNow() { ev_now_update(loop) }

    // MARK: - Spawning

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

    private func startTimerFired(_ g: AnyGreenlet) {
        freeStartTimer(g)
        g.queued = true
        runQueue.append(Unmanaged.passUnretained(g))
    }

    private func freeStartTimer(_ g: AnyGreenlet) {
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
        if g.locals != nil { g.locals = nil }
        g.notifyFinished()
        // A queued entry keeps the hub's reference until it is popped.
        if !g.queued { Unmanaged.passUnretained(g).release() }
    }

    @inline(__always)
    private func addLive(_ g: AnyGreenlet) {
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

    // MARK: - Waking from other threads

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

    // MARK: - Waking

    /// Makes a parked greenlet ready: its blocking call will return
    /// normally. Does nothing to a greenlet that is not parked.
    @inline(__always)
    func ready(_ g: AnyGreenlet) {
        wake(g, reason: .normal)
    }

    /// Makes a parked greenlet ready with an interrupt to throw.
    private func wakeInterrupted(_ g: AnyGreenlet) {
        wake(g, reason: .interrupt)
    }

    @inline(__always)
    private func wake(_ g: AnyGreenlet, reason: AnyGreenlet.WakeReason) {
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
        if g.pendingCancels == nil { g.pendingCancels = [] }
        g.pendingCancels!.append(cancel)
        if isDeliverable(cancel, to: g) { wakeInterrupted(g) }
    }

    /// Withdraws the pending cancellations raised by `source`.
    func withdrawCancel(_ g: AnyGreenlet, source: ObjectIdentifier) {
        guard g.pendingCancels != nil else { return }
        g.pendingCancels!.removeAll { $0.source == source }
        if g.pendingCancels!.isEmpty { g.pendingCancels = nil }
    }

    func nextSequence() -> UInt64 {
        timeoutSequence += 1
        return timeoutSequence
    }

    @inline(__always)
    private func isDeliverable(_ i: AnyGreenlet.Interrupt, to g: AnyGreenlet) -> Bool {
        i.shieldLevel >= g.shieldDepth
    }

    /// The interrupt `g` must throw now, if any, removed from `g`.
    @inline(__always)
    func takeDeliverable(_ g: AnyGreenlet) -> (any Error)? {
        if g.pendingCancels == nil && g.pendingKill == nil { return nil }
        return takeDeliverableSlow(g)
    }

    private func takeDeliverableSlow(_ g: AnyGreenlet) -> (any Error)? {
        guard let (interrupt, isKill) = takeDeliverableInterrupt(g) else { return nil }
        g.lastDelivered = (interrupt, isKill)
        return interrupt.error
    }

    private func takeDeliverableInterrupt(_ g: AnyGreenlet) -> (AnyGreenlet.Interrupt, Bool)? {
        if let cancels = g.pendingCancels {
            // Of the deliverable ones, the earliest started (outermost)
            // wins; the others are withdrawn by their owners as the error
            // unwinds through them.
            var best: Int?
            for i in cancels.indices where isDeliverable(cancels[i], to: g) {
                if best == nil || cancels[i].sequence < cancels[best!].sequence { best = i }
            }
            if let best {
                let c = g.pendingCancels!.remove(at: best)
                if g.pendingCancels!.isEmpty { g.pendingCancels = nil }
                return (c, false)
            }
        }
        if let k = g.pendingKill, isDeliverable(k, to: g) {
            g.pendingKill = nil
            return (k, true)
        }
        return nil
    }

    /// Makes the interrupt `g` last threw pending again, to be thrown at
    /// its next blocking point: for calls that cannot throw it themselves
    /// (a `for` loop over a queue ends instead).
    func rearmLastInterrupt(_ g: AnyGreenlet) {
        guard let (interrupt, isKill) = g.lastDelivered else { return }
        g.lastDelivered = nil
        if isKill {
            if g.pendingKill == nil { g.pendingKill = interrupt }
        } else {
            if g.pendingCancels == nil { g.pendingCancels = [] }
            g.pendingCancels!.append(interrupt)
        }
    }

    // MARK: - Blocking

    /// Throws a pending interrupt of the calling greenlet, if any: the
    /// check every blocking call makes before it blocks.
    @inline(__always)
    func checkpoint(_ g: AnyGreenlet) throws {
        if let e = takeDeliverable(g) { throw e }
    }

    /// Throws what a blocking call by `g` would throw before it parks: a
    /// pending interrupt, or `GreenError.blockingCallOnHub` on the hub's own
    /// context. For calls that set something up before they park.
    func checkMayBlock(_ g: AnyGreenlet, in what: StaticString) throws {
        if ObjectIdentifier(g) == hubGreenletID { throw GreenError.blockingCallOnHub("\(what)") }
        if let e = takeDeliverable(g) { throw e }
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
        if ObjectIdentifier(g) == hubGreenletID { throw GreenError.blockingCallOnHub("\(what)") }
        if let e = takeDeliverable(g) { throw e }
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
        if ObjectIdentifier(g) == hubGreenletID { throw GreenError.blockingCallOnHub("sleep(0)") }
        if let e = takeDeliverable(g) { throw e }
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
        try withUnsafeTemporaryAllocation(of: ev_timer.self, capacity: 1) { buf in
            // libev writes into every timer it moves in its heap: a compact
            // greenlet's goes on the heap (see StackMode).
            let onHeap = g.isCompact
            let timer = onHeap ? UnsafeMutablePointer<ev_timer>.allocate(capacity: 1) : buf.baseAddress!
            timer.initialize(to: ev_timer())
            defer { if onHeap { timer.deallocate() } }
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

    // MARK: - Switching

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
    private func claimNext(after from: AnyGreenlet) -> UnsafeMutablePointer<green_context>? {
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
    private func nextToRun() -> Unmanaged<AnyGreenlet> {
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

    private func recycle(_ dead: Unmanaged<AnyGreenlet>) {
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

    private func pool(for stackSize: Int) -> OpaquePointer {
        if stackSize == 0 || stackSize == defaultPoolSize { return defaultPool }
        if let p = stackPools[stackSize] { return p }
        let p = green_stack_pool_create(stackSize, -1)!
        stackPools[stackSize] = p
        return p
    }

    /// Gives a greenlet that is about to run for the first time its stack
    /// and context. On failure the greenlet finishes with the error.
    private func prepare(_ g: AnyGreenlet) -> Bool {
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
    private func noStack(for g: AnyGreenlet, size: Int, errno err: Int32) {
        g.move(to: .pending)
        finishUnstarted(g, failure: GreenError.stackAllocationFailed(greenlet: g.name, stackSize: size, errno: err))
    }

    /// A context from the free list, or a new one.
    @inline(__always)
    private func takeContext() -> UnsafeMutablePointer<green_context> {
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
    private func compactRunStack(for g: AnyGreenlet) -> UnsafeMutablePointer<green_shared_stack>? {
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

    /// Compact greenlets' run stack and copies (see `StackMode`).
    public struct CompactStats: Sendable {
        /// Stack images saved (a compact greenlet leaving the run stack to
        /// another) and restored, and the bytes both copied.
        public var saves: UInt64
        public var restores: UInt64
        public var bytesCopied: UInt64
    }

    /// Figures of this hub's compact greenlets so far. Call on the hub's
    /// thread.
    public var compactStats: CompactStats {
        guard let s = sharedStack else { return CompactStats(saves: 0, restores: 0, bytesCopied: 0) }
        return CompactStats(saves: s.pointee.saves, restores: s.pointee.restores, bytesCopied: s.pointee.bytes_copied)
    }

    /// Bytes of stack beyond which a parked compact greenlet is reported
    /// (on stderr, or to the logger: see `GreenDiagnostics`), once per
    /// greenlet (0: never). 64 KiB by default.
    public var compactReportLimit: Int {
        get { sharedStack.map { Int($0.pointee.report_limit) } ?? pendingCompactReportLimit }
        set {
            pendingCompactReportLimit = newValue
            sharedStack?.pointee.report_limit = newValue
        }
    }

    /// The life of a spawned greenlet, on its own stack. Returns the
    /// contexts of the final switch; the caller makes it with no Swift
    /// reference alive on this stack (it is never unwound).
    private static func runGreenlet(_ arg: UnsafeMutableRawPointer)
        -> (UnsafeMutablePointer<green_context>, UnsafeMutablePointer<green_context>) {
        // Borrowed, not retained: the hub's reference keeps it alive, and
        // nothing retained here may be left when this stack is abandoned.
        Unmanaged<AnyGreenlet>.fromOpaque(arg)._withUnsafeGuaranteedRef { g in
            let hub = g.hub
            hub.afterSwitch()
            if let kill = g.pendingKill, g.shieldDepth == 0 {
                // Killed after it was queued to start: it never runs.
                g.pendingKill = nil
                g.recordUnstarted(kill.error)
            } else {
                g.runBody()
            }
            g.move(to: .finished)
            if g.pendingKill != nil { g.pendingKill = nil }
            if g.pendingCancels != nil { g.pendingCancels = nil }
            if g.lastDelivered != nil { g.lastDelivered = nil }
            if g.locals != nil { g.locals = nil }
            hub.removeLive(g)
            g.notifyFinished()
            hub.finishedPending = Unmanaged.passUnretained(g)
            let nextCtx = hub.nextToRun()._withUnsafeGuaranteedRef { next in
                next.move(to: .running)
                hub.current = next
                return next.context!
            }
            green_monitor_switched(hub.monitor, nextCtx)
            return (g.context!, nextCtx)
        }
    }

    /// The hub greenlet's body: poll the loop, run what became ready.
    private func runLoop() -> Never {
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
    private func wakeMainBlockedForever() {
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


extension Hub {
    /// Counters of a hub's stack pools, summed over stack sizes.
    public struct StackStats: Equatable, Sendable {
        /// Stacks ever carved out of slabs (in use or free).
        public var total: Int
        public var inUse: Int
        public var free: Int
        /// Memory mappings (slabs) holding them.
        public var slabs: Int
        /// Stacks protected by each kind of guard.
        public var madviseGuarded: Int
        public var mprotectGuarded: Int
        public var canaryOnly: Int
    }

    /// The hub's stack pools, summed. Call on the hub's thread.
    public var stackStats: StackStats {
        var s = StackStats(total: 0, inUse: 0, free: 0, slabs: 0,
                           madviseGuarded: 0, mprotectGuarded: 0, canaryOnly: 0)
        for (_, pool) in stackPools {
            s.total += green_stack_pool_total(pool)
            s.inUse += green_stack_pool_in_use(pool)
            s.free += green_stack_pool_free_count(pool)
            s.slabs += green_stack_pool_slab_count(pool)
            s.madviseGuarded += green_stack_pool_guarded(pool, Int32(GREEN_GUARD_MADVISE.rawValue))
            s.mprotectGuarded += green_stack_pool_guarded(pool, Int32(GREEN_GUARD_MPROTECT.rawValue))
            s.canaryOnly += green_stack_pool_guarded(pool, Int32(GREEN_GUARD_CANARY.rawValue))
        }
        return s
    }
}
