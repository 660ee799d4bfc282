/// A cooperative coroutine with its own stack, run by the hub of the OS
/// thread that spawned it.
///
/// ```swift
/// let g = Greenlet.spawn { try fetch(url) }
/// let page = try g.get()     // waits; rethrows fetch's error
/// ```
///
/// The body runs when the spawning greenlet next blocks (or yields with
/// `Green.sleep(0)`). Every blocking call inside it cooperates: it suspends
/// this greenlet and lets the hub run others. A greenlet finishes by
/// returning (its value), by throwing (its error, kept for `get()`; reported
/// once on stderr if nobody ever asks), or by being killed (`GreenletExit`,
/// quiet). Not `Sendable`: use it on its own thread only.
public final class Greenlet<Value>: AnyGreenlet {
    // No stored property here has a type built from `Value` other than a
    // pointer or a (possibly absent) function: the runtime's own code is not specialised for
    // each `Value`, and a derived generic type (`Value?`, an enum of
    // `Value`) costs a metadata lookup at every use.
    /// Released when the greenlet starts (or is killed before it could):
    /// a finished greenlet holds nothing its body captured, so an owner
    /// that keeps its greenlet (`self.task = spawn { self.loop() }`) is not
    /// kept alive by it, as gevent drops a finished greenlet's `run`.
    @exclusivity(unchecked) var body: (() throws -> Value)?
    /// The returned value, once the body returned: the greenlet's own
    /// memory, set once (`runBody`) and freed in deinit.
    @exclusivity(unchecked) var valuePointer: UnsafeMutablePointer<Value>?

    @usableFromInline
    init(hub: Hub, id: UInt64, parentID: UInt64, stackSize: Int, stackMode: StackMode = .default,
         body: @escaping () throws -> Value) {
        self.body = body
        super.init(hub: hub, id: id, parentID: parentID, stackSize: stackSize, stackMode: stackMode)
    }

    deinit {
        if let p = valuePointer {
            p.deinitialize(count: 1)
            if MemoryLayout<Value>.size > 0 { p.deallocate() }
        }
        reportIfUnobserved()
    }

    /// Spawns a greenlet that runs `body` on the calling thread's hub,
    /// starting soon after the caller blocks or yields. `stackSize` (bytes)
    /// overrides the hub's default; `stackMode` picks how the stack is kept
    /// (see `StackMode`); `name` is used in reports.
    @discardableResult @inlinable
    public static func spawn(name: String? = nil, stackSize: Int = 0, stackMode: StackMode = .default,
                             _ body: @escaping () throws -> Value) -> Greenlet<Value> {
        Hub.withCurrent { hub in
            let (id, parentID) = hub.newGreenletIdentity()
            let g = Greenlet(hub: hub, id: id, parentID: parentID, stackSize: stackSize, stackMode: stackMode,
                             body: body)
            if let name { g.customName = name }
            hub.schedule(new: g)
            return g
        }
    }

    /// Spawns a greenlet that starts after `seconds`. Killing it before then
    /// means it never runs.
    @discardableResult @inlinable
    public static func spawn(after seconds: Double, name: String? = nil, stackSize: Int = 0,
                             stackMode: StackMode = .default,
                             _ body: @escaping () throws -> Value) -> Greenlet<Value> {
        let hub = Hub.current
        let (id, parentID) = hub.newGreenletIdentity()
        let g = Greenlet(hub: hub, id: id, parentID: parentID, stackSize: stackSize, stackMode: stackMode,
                         body: body)
        if let name { g.customName = name }
        hub.schedule(new: g, after: seconds)
        return g
    }

    /// The value, if the greenlet returned one.
    public var value: Value? { valuePointer?.pointee }

    /// Waits for the greenlet to finish, then returns its value or rethrows
    /// its error (`GreenletExit` if it was killed). With `timeout`, throws
    /// `TimeoutError` if it has not finished in time. The wait blocks only
    /// the calling greenlet and throws the interrupt if the caller is
    /// killed or an enclosing timeout expires.
    public func get(timeout: Double? = nil) throws -> Value {
        if state != .finished {
            let finished = try join(timeout: timeout)
            if !finished { throw TimeoutError(seconds: timeout ?? 0, source: nil) }
        }
        outcomeObserved = true
        if let e = failureError { throw e }
        return valuePointer!.pointee
    }

    /// Calls `callback` with this greenlet when it finishes.
    public func link(_ callback: @escaping (Greenlet<Value>) -> Void) {
        linkAny { callback($0 as! Greenlet<Value>) }
    }

    override func runBody() {
        // This frame holds the body while it runs; the greenlet does not.
        // It stays on the stack all that time (in a parked compact
        // greenlet's image): what happens after the body is out of line.
        let run = body.unsafelyUnwrapped
        body = nil
        do {
            keep(try run())
        } catch {
            fail(error)
        }
    }

    /// Keeps the value the body returned.
    @inline(never)
    func keep(_ v: consuming Value) {
        let p: UnsafeMutablePointer<Value>
        if MemoryLayout<Value>.size == 0 {
            // Nothing to store; any aligned address will do.
            p = UnsafeMutablePointer(bitPattern: MemoryLayout<Value>.alignment)!
        } else {
            p = .allocate(capacity: 1)
        }
        p.initialize(to: v)
        valuePointer = p
    }

    override func recordUnstarted(_ error: any Error) {
        body = nil
        failureError = error
    }
}

/// Spawns a greenlet on the calling thread's hub; see `Greenlet.spawn`.
@discardableResult @inlinable
public func spawn<Value>(name: String? = nil, stackSize: Int = 0, stackMode: StackMode = .default,
                         _ body: @escaping () throws -> Value) -> Greenlet<Value> {
    Greenlet<Value>.spawn(name: name, stackSize: stackSize, stackMode: stackMode, body)
}

/// Spawns a greenlet that starts after `seconds`; see `Greenlet.spawn(after:)`.
@discardableResult @inlinable
public func spawn<Value>(after seconds: Double, name: String? = nil, stackSize: Int = 0,
                         stackMode: StackMode = .default,
                         _ body: @escaping () throws -> Value) -> Greenlet<Value> {
    Greenlet<Value>.spawn(after: seconds, name: name, stackSize: stackSize, stackMode: stackMode, body)
}

extension AnyGreenlet {
    /// The greenlet running on the calling thread (its main greenlet when
    /// no spawned greenlet is running).
    public static var current: AnyGreenlet { Hub.current.current }
}
