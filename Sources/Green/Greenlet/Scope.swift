/// A set of child greenlets whose lifetime is bounded by a block: see
/// `withScope`. Use it only inside that block (and its children), on the
/// block's thread.
public final class Scope {
    private let hub: Hub
    private let owner: AnyGreenlet
    private var children: [AnyGreenlet] = []
    private var firstError: (any Error)?
    private var inBody = true
    private var closed = false
    private let sequence: UInt64
    /// The owner's shield depth when the scope began. A child's failure
    /// interrupts the body like a timeout started with the scope: a shield
    /// entered inside the body holds it until the shield ends, while a
    /// scope opened inside a shield still receives it.
    private let shieldLevel: Int

    init(hub: Hub, owner: AnyGreenlet) {
        self.hub = hub
        self.owner = owner
        sequence = hub.nextSequence()
        shieldLevel = owner.shieldDepth
    }

    /// Spawns a child. If it throws (anything but `GreenletExit`), the
    /// other children are killed, the scope's block is interrupted at its
    /// next blocking point with that error, and `withScope` rethrows it.
    @discardableResult
    public func spawn<T>(name: String? = nil, stackSize: Int = 0, stackMode: StackMode = .default,
                         _ body: @escaping () throws -> T) -> Greenlet<T> {
        precondition(!closed, "Scope.spawn after the scope ended")
        let g = Greenlet<T>.spawn(name: name, stackSize: stackSize, stackMode: stackMode, body)
        children.append(g)
        if firstError != nil {
            try? g.kill(block: false)
        }
        g.linkAny { [unowned self] child in self.childFinished(child) }
        return g
    }

    /// The children spawned so far.
    public var greenlets: [AnyGreenlet] { children }

    private func childFinished(_ child: AnyGreenlet) {
        guard let e = child.failure, !(e is GreenletExit) else { return }
        child.outcomeObserved = true
        guard firstError == nil else { return }
        firstError = e
        cancelChildren()
        if inBody {
            hub.interrupt(owner, cancel: AnyGreenlet.Interrupt(
                error: e, shieldLevel: shieldLevel, source: ObjectIdentifier(self), sequence: sequence))
        }
    }

    private func cancelChildren() {
        for c in children where !c.isReady {
            try? c.kill(block: false)
        }
    }

    /// Waits for every child; if the waiter is interrupted meanwhile, the
    /// children are killed, still awaited, and the interrupt rethrown.
    fileprivate func finish(bodyError: (any Error)?) throws {
        inBody = false
        hub.withdrawCancel(owner, source: ObjectIdentifier(self))
        if bodyError != nil { cancelChildren() }
        var interruption: (any Error)?
        var i = 0
        while i < children.count {
            let c = children[i]
            do {
                try c.join()
                i += 1
            } catch {
                if interruption == nil { interruption = error }
                cancelChildren()
                owner.shieldDepth += 1
                defer { owner.shieldDepth -= 1 }
                // Children were killed; this wait ends as they finish.
                while i < children.count {
                    _ = try? children[i].join()
                    i += 1
                }
            }
        }
        closed = true
        if let interruption { throw interruption }
    }

    fileprivate var failure: (any Error)? { firstError }
}

/// Runs `body` with a scope for child greenlets and returns only when all
/// of them have finished. The first child to fail cancels the others (and
/// interrupts `body`), and its error is rethrown here once every child has
/// ended. If `body` throws, the children are killed and awaited, and the
/// error rethrown. Nothing spawned in the scope outlives it. Waiting for
/// the children blocks only the calling greenlet; if it is killed or an
/// enclosing timeout expires meanwhile, the children are killed, still
/// awaited, and the interrupt rethrown. Children run on the caller's hub.
///
/// ```swift
/// let (a, b) = try withScope { scope in
///     let a = scope.spawn { try fetch(u1) }
///     let b = scope.spawn { try fetch(u2) }
///     return (a, b)
/// }
/// ```
public func withScope<R>(_ body: (Scope) throws -> R) throws -> R {
    let hub = Hub.current
    let scope = Scope(hub: hub, owner: hub.current!)
    let result: Result<R, any Error>
    do {
        result = .success(try body(scope))
    } catch {
        result = .failure(error)
    }
    var bodyError: (any Error)?
    if case .failure(let e) = result { bodyError = e }
    try scope.finish(bodyError: bodyError)
    if let e = scope.failure { throw e }
    return try result.get()
}
