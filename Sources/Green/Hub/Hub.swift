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
// Invariants relied on by the `unsafe` parts (unretained references,
// `Unmanaged`, `unowned(unsafe)`, raw pointers handed to libev and C);
// the files that use them point here:
//
//   1. Thread confinement: only the hub's own thread touches the hub and
//      its greenlets. Other threads reach a hub only through its mailbox
//      (RemoteWake.swift), whose jobs run on the hub's thread.
//   2. Greenlet lifetime: the hub holds one retain on every spawned
//      greenlet from `schedule(new:)` until it finished and left the run
//      queue (`recycle`, `finishUnstarted` or `nextToRun` drops it).
//      So an unretained reference to an unfinished greenlet (run queue,
//      live list, wait nodes, the `data` of its timers and watchers,
//      `current`) is valid. Its context and stack exist from its first
//      switch-in until it is recycled.
//   3. Hub lifetime: the thread-local slot (`green_hub_get`) holds the
//      hub until its thread exits. Code on that thread borrows it without
//      a retain (`withCurrent`, a greenlet's `unowned(unsafe) hub`); code
//      that may run after the thread exited (a greenlet's deinit, a
//      cross-thread waker) must not use such a reference.
//   4. Wait registrations: what libev or a waker writes into while a
//      greenlet is parked (its wait node, timer, io watcher) lives in its
//      context's wait record (`takeWaitRecord`; not on its stack, which a
//      compact greenlet's is copied away while parked), and is stopped or
//      unlinked, in a `defer`, before the blocking call returns, however
//      it returns.
//
// The hub's own C state (loop, async watcher, monitor slot, stack pools,
// free contexts, run stack) is allocated in `init` and freed in `deinit`;
// the callbacks that find the hub through a watcher's unretained `data`
// run only inside its loop, so never after `deinit`.
//
// `@exclusivity(unchecked)`, on the hub's and the greenlets' scheduling
// state and on the runtime's wait structures (queues, locks, wait lists),
// turns off Swift's dynamic exclusivity checks for those properties only.
// It is sound here because of the first invariant and one more: no access
// to them spans a context switch (the code reads or writes a field and
// is done; a switch happens only in `switchAway`, between accesses), so
// two accesses to one of them never overlap, on this thread or across
// greenlets. Checking would cost a runtime call per access on the switch
// path, and across a switch it could not help anyway: each greenlet has
// its own access set (see NOTES on custom stacks), so an overlap between
// greenlets is invisible to it. Static exclusivity checking still applies.
//
// Where things are: this file holds the hub's state and life cycle;
// HubSpawning, HubInterrupts (waking, kills, timeouts), HubBlocking (park,
// yield, sleep), HubScheduling (switching and the loop), HubStacks (a
// greenlet's stack and context), HubClock and VirtualTime, HubStats,
// RemoteWake (other threads), HubExecutor (async jobs) extend it.
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

    /// Free stacks each stack pool of a hub keeps backed by memory after
    /// its greenlets finished: 1,024, or GREEN_WARM_STACKS from the
    /// environment. A later burst of up to that many greenlets starts on
    /// them without a page fault or a system call (10,000 sleepers of
    /// 0.10 s started at once on a hub that ran such a burst before: 0.13
    /// to 0.14 s on 1,024 warm stacks, 0.11 s on 10,000); a stack released
    /// beyond the limit gives its pages back (a few KiB each). Applies to
    /// the pools hubs make after it is set.
    public static var warmStackLimit: Int {
        get {
            let v = configuredWarmStacks.load(ordering: .relaxed)
            if v >= 0 { return v }
            if let env = getenv("GREEN_WARM_STACKS"), let n = Int(String(cString: env)), n >= 0 { return n }
            return 1024
        }
        set { configuredWarmStacks.store(max(0, newValue), ordering: .relaxed) }
    }
    private static let configuredWarmStacks = Atomic<Int>(-1)
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
    /// The OS thread the hub belongs to.
    public let thread: pthread_t
    // Set at the end of init (they need `self`); never nil afterwards.
    private(set) var mainGreenlet: AnyGreenlet!
    private(set) var hubGreenlet: AnyGreenlet!
    @exclusivity(unchecked) unowned(unsafe) var hubGreenletRef: AnyGreenlet!
    /// The hub greenlet's identity, compared without loading a reference.
    @exclusivity(unchecked) var hubGreenletID = ObjectIdentifier(Hub.self)
    @exclusivity(unchecked) var stackPools: [Int: OpaquePointer] = [:]
    let defaultPool: OpaquePointer
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
    var pendingCompactReportLimit = 64 * 1024
    /// Spawned greenlets that have not finished.
    @exclusivity(unchecked) public internal(set) var liveGreenlets = 0
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
    @exclusivity(unchecked) var remoteWaits = 0

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
            HubDebugInfo.unregister(p)
            Unmanaged<Hub>.fromOpaque(p).release()
        }
        return key
    }()

    @usableFromInline @inline(never)
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
        green_stack_pool_set_idle_limit(pool, Hub.warmStackLimit)
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
        HubDebugInfo.register(self)
        green_monitor_set_tag(monitor, UInt64(registryID))
        BlockedHubReport.installSink()
    }

    deinit {
        // Thread exit. Greenlets still parked here are abandoned, as in
        // gevent: nothing can run them any more. Their stacks go with the
        // pools; references held on those stacks are leaked.
        // Debuggers stop looking first: what they would read goes next.
        HubDebugInfo.unregister(Unmanaged.passUnretained(self).toOpaque())
        if let dead = finishedPending { finishedPending = nil; recycle(dead) }
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
}
