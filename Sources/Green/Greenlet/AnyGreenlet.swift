import CGreenContext
import CLibev

/// A greenlet of any result type: what `joinAll`, `killAll`, `wait(any:)`
/// and `Greenlet.current` deal in.
///
/// A greenlet belongs to the hub of the OS thread that spawned it and never
/// moves; every method must be called on that thread. Greenlets are not
/// `Sendable`.
public class AnyGreenlet {
    enum State: UInt8 {
        /// Spawned, not started yet (queued, or waiting for `spawn(after:)`).
        case pending
        /// In the hub's run queue.
        case ready
        case running
        /// Suspended in a blocking call, waiting to be made ready.
        case parked
        case finished

        /// The moves a greenlet's state may make, the only ones the hub
        /// makes (`move(to:)` checks them in debug builds, as Go's
        /// `casgstatus` does): a spawned greenlet starts, or finishes
        /// without running (killed first, or no stack); a running one parks,
        /// yields (ready) or finishes; a parked one is made ready; a ready
        /// one runs. The main greenlet starts running and the hub's own
        /// greenlet ready, when the hub is made.
        func mayMove(to next: State) -> Bool {
            switch (self, next) {
            case (.pending, .pending), (.pending, .ready), (.pending, .running), (.pending, .finished),
                 (.ready, .running),
                 (.running, .parked), (.running, .ready), (.running, .finished),
                 (.parked, .ready):
                return true
            default:
                return false
            }
        }
    }

    enum WakeReason: UInt8 {
        case normal
        /// Woken by `kill` or a timeout: the blocking call must throw.
        case interrupt
    }

    /// An error waiting to be thrown at the greenlet's next blocking point.
    struct Interrupt {
        let error: any Error
        /// Deliverable while the greenlet's shield depth is at most this.
        let shieldLevel: Int
        /// The `Timeout` that raised it, so cancelling it can withdraw it.
        let source: ObjectIdentifier?
        /// Order of the timeouts' start: an earlier (outer) one wins.
        let sequence: UInt64
    }

    // Stored properties, in an order that packs them: the object is a
    // parked greenlet's largest fixed cost after its stack (compact
    // greenlets park by the million), so the words every greenlet needs
    // come first, the bytes after `waitingOn` (which ends 7 bytes short of
    // a word), and what few greenlets need is in `extras`.

    /// Unretained (invariant 3 in Hub.swift): valid while the hub's thread
    /// runs, which is whenever the greenlet's methods may be called; its
    /// deinit, which may run after, does not use it.
    unowned(unsafe) let hub: Hub
    /// Process-unique, increasing.
    @exclusivity(unchecked) public internal(set) var id: UInt64
    /// The id of the greenlet that spawned this one (0 for a thread's
    /// main greenlet and its hub).
    public let parentID: UInt64
    /// Requested stack size in bytes; 0 means the hub's default.
    let stackSize: Int
    /// Its context: the hub's memory, set from its first switch-in until
    /// it is recycled (nil before and after; invariant 2 in Hub.swift).
    @exclusivity(unchecked) var context: UnsafeMutablePointer<green_context>?
    @exclusivity(unchecked) var shieldDepth = 0
    /// Neighbours in the hub's list of live greenlets (unretained: the
    /// hub holds every live greenlet, invariant 2 in Hub.swift).
    @exclusivity(unchecked) var liveNext: Unmanaged<AnyGreenlet>?
    @exclusivity(unchecked) var livePrev: Unmanaged<AnyGreenlet>?
    /// The hub's loop time when it last parked (for dumps).
    @exclusivity(unchecked) var parkedSince: Double = 0
    /// The first greenlet waiting for this one to finish, unretained: a
    /// waiter is parked (so its hub holds it) and always removes itself.
    @exclusivity(unchecked) var firstWaiter: Unmanaged<AnyGreenlet>?
    /// What few greenlets need (see `Extras`); nil until one does.
    @exclusivity(unchecked) var extras: Extras?
    /// What the greenlet is blocked on, for deadlock reports and dumps.
    @exclusivity(unchecked) var waitingOn: StaticString = ""
    /// Runs on the hub's shared run stack, its stack on the heap while
    /// parked (`StackMode.compact`, where this build has it).
    public let isCompact: Bool
    /// Changed only through `move(to:)`.
    @exclusivity(unchecked) private(set) var state: State = .pending
    @exclusivity(unchecked) var wakeReason: WakeReason = .normal
    @exclusivity(unchecked) var queued = false
    /// Set once somebody has looked at the outcome (`get`, `error`, a
    /// scope or `joinAll` that rethrows): an error nobody looked at is
    /// reported when the greenlet object goes away.
    @exclusivity(unchecked) var outcomeObserved = false

    /// What a greenlet needs only when it is named, killed, timed out,
    /// joined by more than one, linked to, fails, keeps greenlet-local
    /// values or starts late: apart, so that the common greenlet's object
    /// stays small. Made on first use (`madeExtras`), kept until the
    /// greenlet goes.
    final class Extras {
        @exclusivity(unchecked) var pendingKill: Interrupt?
        /// Expired timeouts and failed scopes not yet thrown, in no order.
        /// Several can be pending when some are held by a shield.
        @exclusivity(unchecked) var pendingCancels: [Interrupt]?
        /// The interrupt thrown last and whether it was a kill, for
        /// `Hub.rearmLastInterrupt`.
        @exclusivity(unchecked) var lastDelivered: (Interrupt, Bool)?
        // Joiners after the first (`firstWaiter`).
        @exclusivity(unchecked) var moreWaiters: [AnyGreenlet]?
        @exclusivity(unchecked) var callbacks: [(AnyGreenlet) -> Void]?
        @exclusivity(unchecked) var startTimer: UnsafeMutablePointer<ev_timer>?
        /// The error the greenlet finished with, if any.
        @exclusivity(unchecked) var failureError: (any Error)?
        @exclusivity(unchecked) var customName: String?
        /// Greenlet-local values; nil until the first is set.
        @exclusivity(unchecked) var locals: [UInt64: Any]?
    }

    /// `extras`, made if the greenlet has none yet.
    var madeExtras: Extras {
        if let extras { return extras }
        let made = Extras()
        extras = made
        return made
    }

    // The extras as properties of the greenlet. Reading one a greenlet
    // never set makes nothing; setting nil where nothing was set neither.
    var pendingKill: Interrupt? {
        get { extras?.pendingKill }
        set { if newValue != nil || extras != nil { madeExtras.pendingKill = newValue } }
    }
    var pendingCancels: [Interrupt]? {
        get { extras?.pendingCancels }
        set { if newValue != nil || extras != nil { madeExtras.pendingCancels = newValue } }
    }
    var lastDelivered: (Interrupt, Bool)? {
        get { extras?.lastDelivered }
        set { if newValue != nil || extras != nil { madeExtras.lastDelivered = newValue } }
    }
    var startTimer: UnsafeMutablePointer<ev_timer>? {
        get { extras?.startTimer }
        set { if newValue != nil || extras != nil { madeExtras.startTimer = newValue } }
    }
    var failureError: (any Error)? {
        get { extras?.failureError }
        set { if newValue != nil || extras != nil { madeExtras.failureError = newValue } }
    }
    @usableFromInline var customName: String? {
        get { extras?.customName }
        set { if newValue != nil || extras != nil { madeExtras.customName = newValue } }
    }
    var locals: [UInt64: Any]? {
        get { extras?.locals }
        set { if newValue != nil || extras != nil { madeExtras.locals = newValue } }
    }
    /// Whether an interrupt is pending (a kill, a cancellation): the
    /// question every blocking call asks, one load when there is none.
    @inline(__always)
    var hasPendingInterrupt: Bool {
        guard let extras else { return false }
        return extras.pendingKill != nil || extras.pendingCancels != nil
    }

    /// A name for reports; `Greenlet-<id>` unless set.
    public var name: String {
        get { customName ?? "Greenlet-\(id)" }
        set { customName = newValue; copyNameToContext() }
    }

    /// The one place a greenlet's state changes: checks the move in debug
    /// builds (release builds compile the check out).
    @inline(__always)
    func move(to next: State) {
        // The hub's own greenlet counts as running while it lets others
        // run (it is the scheduler, in no queue): it is claimed again
        // from running.
        assert(state.mayMove(to: next) || (state == .running && next == .running && self === hub.hubGreenletRef),
               "swift-green: greenlet \(name) cannot go from \(state) to \(next)")
        state = next
    }

    init(hub: Hub, id: UInt64, parentID: UInt64, stackSize: Int, stackMode: StackMode = .default) {
        self.hub = hub
        self.id = id
        self.parentID = parentID
        self.stackSize = stackSize
        // The shared run stack has the hub's default size: a greenlet that
        // asks for more gets a stack of its own.
        isCompact = stackMode == .compact && StackMode.compactAvailable
            && (stackSize == 0 || stackSize <= hub.defaultPoolSize)
    }

    // MARK: - Public surface

    /// Bytes of stack a parked compact greenlet keeps on the heap (0 for
    /// dedicated stacks, and while its stack is on the run stack).
    public var savedStackBytes: Int { context.map { Int(green_context_saved_bytes($0)) } ?? 0 }

    /// Whether the greenlet has finished (returned, thrown or been killed).
    public var isReady: Bool { state == .finished }
    /// Whether the greenlet finished by returning a value.
    public var isSuccessful: Bool { state == .finished && failure == nil }
    /// Whether the greenlet has started running and not finished.
    public var isStarted: Bool { state != .pending && state != .finished }
    /// The error the greenlet finished with (`GreenletExit` if killed).
    public var error: (any Error)? {
        outcomeObserved = true
        return failure
    }

    /// Waits until the greenlet finishes, at most `timeout` seconds.
    /// Returns whether it finished. Blocks the calling greenlet only.
    /// Throws if the caller is killed or times out meanwhile; joining
    /// oneself throws `GreenError.joinSelf`.
    @discardableResult
    public func join(timeout: Double? = nil) throws -> Bool {
        if state == .finished { return true }
        return try hub.withCurrentGreenlet { me in
            if me === self { throw GreenError.joinSelf(name) }
            if let timeout {
                return try hub.withDeadline(timeout) { try waitUntilFinished(me) }
            }
            try waitUntilFinished(me)
            return true
        }
    }

    /// Throws `error` into the greenlet at its current or next blocking
    /// point (`GreenletExit` by default, which ends it quietly). A greenlet
    /// that has not started never runs. With `block`, waits up to `timeout`
    /// seconds for it to finish, blocking only the calling greenlet and
    /// throwing the interrupt if the caller is itself killed or an
    /// enclosing timeout expires meanwhile. Killing a finished greenlet
    /// does nothing. Killing the calling greenlet throws `error` at once.
    public func kill(_ error: any Error = GreenletExit(), block: Bool = true, timeout: Double? = nil) throws {
        switch state {
        case .finished:
            return
        case .pending:
            hub.finishUnstarted(self, failure: error)
            return
        case .running:
            if hub.current === self { throw error }
        case .ready, .parked:
            break
        }
        hub.interrupt(self, kill: error)
        if block { try join(timeout: timeout) }
    }

    /// Calls `callback` on the hub's thread when the greenlet finishes (at
    /// once if it has). Callbacks run in order, in the finishing greenlet,
    /// before its joiners wake; they should not block.
    public func linkAny(_ callback: @escaping (AnyGreenlet) -> Void) {
        if state == .finished { callback(self); return }
        let x = madeExtras
        x.callbacks = (x.callbacks ?? []) + [callback]
    }

    // MARK: - Runtime internals

    /// Records the error the body threw.
    @inline(never)
    func fail(_ error: any Error) {
        failureError = error
    }

    /// The error outcome without marking it observed.
    var failure: (any Error)? { failureError }

    /// Runs the body and stores the outcome. Subclasses override.
    func runBody() {}

    /// Records the outcome of a greenlet that never ran. Subclasses override.
    func recordUnstarted(_ error: any Error) {}

    func waitUntilFinished(_ me: AnyGreenlet) throws {
        addWaiter(me)
        defer { removeWaiter(me) }
        while state != .finished {
            try hub.park(me, on: "join")
        }
    }

    func addWaiter(_ g: AnyGreenlet) {
        if firstWaiter == nil {
            firstWaiter = Unmanaged.passUnretained(g)
        } else {
            let x = madeExtras
            if x.moreWaiters == nil { x.moreWaiters = [] }
            x.moreWaiters!.append(g)
        }
    }

    func removeWaiter(_ g: AnyGreenlet) {
        if firstWaiter?.toOpaque() == Unmanaged.passUnretained(g).toOpaque() {
            firstWaiter = nil
        } else if let x = extras, let i = x.moreWaiters?.firstIndex(where: { $0 === g }) {
            x.moreWaiters!.remove(at: i)
        }
    }

    /// Runs the callbacks and wakes the joiners. Called in the finishing
    /// greenlet (or by whoever killed an unstarted one).
    @inline(__always)
    func notifyFinished() {
        if let x = extras, let cbs = x.callbacks {
            x.callbacks = nil
            for cb in cbs { cb(self) }
        }
        if let w = firstWaiter { w._withUnsafeGuaranteedRef { hub.ready($0) } }
        if let more = extras?.moreWaiters {
            for w in more { hub.ready(w) }
        }
    }

    func copyNameToContext() {
        guard let ctx = context else { return }
        copyName(into: ctx)
    }

    func copyName(into ctx: UnsafeMutablePointer<green_context>) {
        guard var name = customName else { return green_context_set_identity(ctx, id, nil, 0) }
        name.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { green_context_set_identity(ctx, id, $0.baseAddress, $0.count) }
        }
    }

    /// An error that nobody observed is reported once, here.
    func reportIfUnobserved() {
        guard !outcomeObserved, let failure, !(failure is GreenletExit) else { return }
        outcomeObserved = true
        // The thread's hub, not `hub`: a greenlet let go after its thread
        // exited outlives the hub it names (greenlets never change thread).
        UnhandledErrorReporter.report(greenletName: name, greenletID: id, hub: Hub.existingID, error: failure)
    }
}

extension AnyGreenlet: CustomStringConvertible {
    /// The name and state, for logs: "<worker-3 parked in Queue.get>".
    public var description: String {
        let s: String
        switch state {
        case .pending: s = "pending"
        case .ready: s = "ready"
        case .running: s = "running"
        case .parked: s = "parked in \(waitingOn)"
        case .finished: s = failure == nil ? "finished" : "failed"
        }
        return "<\(name) \(s)>"
    }
}
