import DequeModule

// How `map`, `imap` and `imapUnordered` run.
//
// Worker greenlets of the group take elements one at a time from a shared
// iterator, rather than one greenlet per element: at most the pool's size
// run at once anyway, and a worker that is never blocked (trivial work)
// runs the whole map without a switch. Workers are added only while every
// worker is busy: a worker that claims an element and sees no idle worker
// left spawns one more (if the group has a free slot and the limit allows).
// So blocking work spreads over up to `limit` greenlets and trivial work
// stays on one or two.
//
// Ordered results wait in a reorder buffer until the reader reaches them;
// lazy maps stop claiming elements when `window` results are ahead of the
// reader. The reader makes progress itself when no worker is left (a full
// pool, or a pool the reader belongs to).
//
// `map` keeps its elements and results in manually allocated buffers: this
// code runs unspecialised (the caller's types are not known here), and a
// derived generic type (`R?`, a tuple, `Result<R, _>`) would cost a
// metadata lookup per element, where a typed pointer costs only the
// element's own value witnesses. The buffers are the run's own, freed in
// its deinit, which deinitializes exactly what is initialized then: all
// `elementCount` elements, the results `resultFilled` marks, the
// lookahead if `hasLookahead`. A claimed element is copied into the
// claiming worker's own temporary and deinitialized there. Hub thread
// only, like the group.

@usableFromInline
final class MapRun<Element, R> {
    @usableFromInline
    enum Mode { case collect, ordered, unordered }

    private let group: Group
    private let mode: Mode
    /// Lazy maps read their elements from here; `map` from `elements`.
    private var iterator: AnyIterator<Element>?
    // Raw, not typed optionals: a stored `UnsafeMutablePointer<Element>?`
    // costs a metadata lookup at each access in unspecialised code.
    private let elementsRaw: UnsafeMutableRawPointer?
    private let elementCount: Int
    private let resultsRaw: UnsafeMutableRawPointer?
    @exclusivity(unchecked) private var resultFilled: [Bool] = []
    /// A lazy map's next element, read ahead by a reader that must know
    /// whether any is left before it waits for a slot.
    private let lookaheadRaw: UnsafeMutableRawPointer?
    private var hasLookahead = false
    /// The caller while it works on elements itself (a member of the pool,
    /// or a reader with no worker), so that `stop` can interrupt it too.
    private var inlineWorker: AnyGreenlet?
    private var inlineShieldLevel = 0
    private let body: (Element) throws -> R
    private let window: Int?
    private let limit: Int

    @exclusivity(unchecked) private var handedOut = 0
    @exclusivity(unchecked) private var exhausted = false
    @exclusivity(unchecked) private var consumed = 0
    private var pending: [Int: Result<R, any Error>] = [:]
    private var done = Deque<Result<R, any Error>>()
    private(set) var failure: (any Error)?
    @exclusivity(unchecked) private(set) var stopped = false

    private var workers: [AnyGreenlet] = []
    @exclusivity(unchecked) private(set) var liveWorkers = 0
    /// Workers spawned that have not claimed an element yet.
    @exclusivity(unchecked) private var idleWorkers = 0
    /// The reader, waiting for results or for the workers to end.
    private let readers = WaitList()
    /// Workers waiting for the reader to catch up (lazy maps).
    private let space = WaitList()

    /// A `map` over `all`. `Group.map` makes the array in its caller's
    /// module, where the element type is known and the copy is fast.
    @usableFromInline
    init(group: Group, all: [Element], body: @escaping (Element) throws -> R) {
        self.group = group
        mode = .collect
        self.body = body
        window = nil
        let buffer = UnsafeMutablePointer<Element>.allocate(capacity: all.count)
        all.withUnsafeBufferPointer { source in
            if let from = source.baseAddress { buffer.initialize(from: from, count: all.count) }
        }
        elementsRaw = UnsafeMutableRawPointer(buffer)
        elementCount = all.count
        resultsRaw = UnsafeMutableRawPointer(UnsafeMutablePointer<R>.allocate(capacity: all.count))
        resultFilled = Array(repeating: false, count: all.count)
        limit = max(1, min(group.mapConcurrency, all.count))
        lookaheadRaw = nil
    }

    /// A lazy map (`imap`, `imapUnordered`).
    init<S: Sequence>(group: Group, elements: S, mode: Mode, window: Int, body: @escaping (S.Element) throws -> R)
        where S.Element == Element {
        self.group = group
        self.mode = mode
        self.body = body
        self.window = window
        limit = max(1, min(group.mapConcurrency, window))
        iterator = AnyIterator(elements.makeIterator())
        elementsRaw = nil
        elementCount = 0
        resultsRaw = nil
        lookaheadRaw = UnsafeMutableRawPointer(UnsafeMutablePointer<Element>.allocate(capacity: 1))
    }

    deinit {
        if let elementsRaw {
            elementsRaw.assumingMemoryBound(to: Element.self).deinitialize(count: elementCount)
            elementsRaw.deallocate()
        }
        if let resultsRaw {
            let results = resultsRaw.assumingMemoryBound(to: R.self)
            for i in resultFilled.indices where resultFilled[i] { (results + i).deinitialize(count: 1) }
            resultsRaw.deallocate()
        }
        if let lookaheadRaw {
            if hasLookahead { lookaheadRaw.assumingMemoryBound(to: Element.self).deinitialize(count: 1) }
            lookaheadRaw.deallocate()
        }
    }

    // MARK: - Workers

    /// Claims the next element: copies it into `slot` (uninitialized) and
    /// returns its index, waiting while a lazy map is a full window ahead
    /// of its reader; -1 when there is nothing (more) to do.
    private func claim(into slot: UnsafeMutablePointer<Element>) throws -> Int {
        if stopped || exhausted { return -1 }
        guard let elementsRaw else { return try claimLazily(into: slot) }
        if handedOut == elementCount {
            exhausted = true
            return -1
        }
        slot.initialize(to: (elementsRaw.assumingMemoryBound(to: Element.self) + handedOut).pointee)
        handedOut += 1
        return handedOut - 1
    }

    // Apart from `claim` because its `Element?` costs a metadata lookup on
    // every call of the function that mentions it.
    @inline(never)
    private func claimLazily(into slot: UnsafeMutablePointer<Element>) throws -> Int {
        while true {
            if stopped || exhausted { return -1 }
            if let window, handedOut - consumed >= window {
                _ = try Hub.wait(in: space, on: "Pool.imap (waiting for the reader)", timeout: nil)
                continue
            }
            if hasLookahead {
                slot.moveInitialize(from: lookaheadRaw!.assumingMemoryBound(to: Element.self), count: 1)
                hasLookahead = false
            } else {
                guard let element = iterator!.next() else {
                    exhausted = true
                    readers.grantAll()
                    return -1
                }
                slot.initialize(to: element)
            }
            handedOut += 1
            return handedOut - 1
        }
    }

    /// Reads the next element of a lazy map ahead; sets `exhausted` if
    /// there is none.
    @inline(never)
    private func readAhead() {
        guard !hasLookahead, !exhausted else { return }
        if let element = iterator!.next() {
            lookaheadRaw!.assumingMemoryBound(to: Element.self).initialize(to: element)
            hasLookahead = true
        } else {
            exhausted = true
        }
    }

    /// The work loop of a worker (or of a caller that takes part). A worker
    /// that is killed (`GreenletExit`) records that as its element's
    /// failure and ends: the kill was meant for it, not for the element.
    func work(asWorker: Bool) throws {
        var first = asWorker
        defer { if first { idleWorkers -= 1 } }
        if !asWorker { beginInlineWork() }
        defer { if !asWorker { endInlineWork() } }
        try withUnsafeTemporaryAllocation(of: Element.self, capacity: 1) { buf in
            let element = buf.baseAddress!
            while true {
                let index = try claim(into: element)
                if index < 0 { return }
                defer { element.deinitialize(count: 1) }
                if first {
                    idleWorkers -= 1
                    first = false
                }
                if idleWorkers == 0 && liveWorkers < limit && !exhausted {
                    try spawnWorker(waitForSlot: false)
                }
                if mode == .collect {
                    // Straight into the results: no Result<R, _> per element.
                    do {
                        (resultsRaw!.assumingMemoryBound(to: R.self) + index).initialize(to: try body(element.pointee))
                        resultFilled[index] = true
                    } catch {
                        if stopped { return }
                        fail(error)
                        if error is GreenletExit { throw error }
                    }
                    continue
                }
                let outcome: Result<R, any Error>
                do {
                    outcome = .success(try body(element.pointee))
                } catch {
                    // Killed because the run stopped: leave quietly.
                    if stopped { return }
                    outcome = .failure(error)
                }
                deliver(index, outcome)
                if case .failure(let error) = outcome, error is GreenletExit { throw error }
            }
        }
    }

    /// `map`: the first error stops the run.
    private func fail(_ error: any Error) {
        guard failure == nil else { return }
        failure = error
        stop()
    }

    /// Starts a worker if the group has a slot (waiting for one with
    /// `waitForSlot`); returns whether it did.
    @discardableResult
    func spawnWorker(waitForSlot: Bool) throws -> Bool {
        if waitForSlot {
            try group.reserveSlot(timeout: nil)
        } else if !group.tryReserveSlot() {
            return false
        }
        liveWorkers += 1
        idleWorkers += 1
        let g = group.start(name: nil, stackSize: 0) { [self] in try work(asWorker: true) }
        // On finishing, also when killed before it ever ran.
        g.linkAny { [self] _ in workerEnded() }
        workers.append(g)
        return true
    }

    private func workerEnded() {
        liveWorkers -= 1
        if liveWorkers == 0 {
            workers = []
            readers.grantAll()
        }
    }

    private func deliver(_ index: Int, _ outcome: Result<R, any Error>) {
        switch mode {
        case .collect:
            preconditionFailure("map delivers in work(asWorker:)")
        case .ordered:
            pending[index] = outcome
            if index == consumed { readers.grantAll() }
        case .unordered:
            done.append(outcome)
            readers.grantAll()
        }
    }

    /// Stops handing out elements and kills the workers (without waiting);
    /// a caller busy with an element itself is interrupted with `MapStopped`.
    func stop() {
        guard !stopped else { return }
        stopped = true
        space.grantAll()
        for w in workers where !w.isReady { try? w.kill(block: false) }
        let hub = Hub.current
        if let caller = inlineWorker, caller !== hub.current {
            hub.interrupt(caller, cancel: AnyGreenlet.Interrupt(
                error: MapStopped(), shieldLevel: inlineShieldLevel, source: ObjectIdentifier(self),
                sequence: hub.nextSequence()))
        }
    }

    private func beginInlineWork() {
        let me = Hub.current.current!
        inlineWorker = me
        inlineShieldLevel = me.shieldDepth
    }

    private func endInlineWork() {
        guard let me = inlineWorker else { return }
        inlineWorker = nil
        Hub.current.withdrawCancel(me, source: ObjectIdentifier(self))
    }

    /// Waits, holding interrupts, until every worker has ended.
    private func awaitWorkersShielded() {
        try? shielded {
            while liveWorkers > 0 {
                _ = try Hub.wait(in: readers, on: "Pool.map (stopping workers)", timeout: nil)
            }
        }
    }

    // MARK: - Readers

    /// `map`: runs to the end and returns every result in order, or
    /// rethrows the first error once all workers ended.
    @usableFromInline
    func collectAll() throws -> [R] {
        if elementCount == 0 { return [] }
        let hub = Hub.current
        let callerIsMember = group.contains(hub.current)
        do {
            while true {
                if liveWorkers > 0 {
                    _ = try hub.wait(in: readers, on: "Pool.map")
                    continue
                }
                if stopped || handedOut == elementCount { break }
                // No worker left and elements remain: at the start, or
                // after workers were killed before they took any. A caller
                // that is a member of the pool works itself rather than
                // wait for a slot it may be holding.
                if try callerIsMember || !spawnWorker(waitForSlot: true) {
                    try work(asWorker: false)
                }
            }
        } catch {
            stop()
            awaitWorkersShielded()
            throw error
        }
        if let failure { throw failure }
        let n = resultFilled.count
        precondition(handedOut == n && !resultFilled.contains(false), "Pool.map: an element has no result")
        // Move the results into an array; the buffer keeps nothing.
        let out = [R](unsafeUninitializedCapacity: n) { buffer, count in
            if n > 0 { buffer.baseAddress!.moveInitialize(from: resultsRaw!.assumingMemoryBound(to: R.self), count: n) }
            count = n
        }
        for i in 0..<n { resultFilled[i] = false }
        return out
    }

    /// The next result of a lazy map; nil at the end.
    func next() throws -> R? {
        let hub = Hub.current
        do {
            while true {
                // Stopped by an error already thrown here: the end.
                if stopped { return nil }
                if let outcome = takeReady() {
                    switch outcome {
                    case .success(let v):
                        return v
                    case .failure(let e):
                        stop()
                        awaitWorkersShielded()
                        throw e
                    }
                }
                if stopped || (exhausted && consumed == handedOut) { return nil }
                if liveWorkers == 0 {
                    // Nobody works for this map. If an element is left,
                    // start a worker (waiting for a slot), or, in a member
                    // of a full pool, do one element here.
                    readAhead()
                    if !hasLookahead { continue }
                    let member = group.contains(hub.current)
                    if try !spawnWorker(waitForSlot: !member) {
                        beginInlineWork()
                        defer { endInlineWork() }
                        try withUnsafeTemporaryAllocation(of: Element.self, capacity: 1) { buf in
                            let element = buf.baseAddress!
                            let index = try claim(into: element)
                            guard index >= 0 else { return }
                            defer { element.deinitialize(count: 1) }
                            let outcome = Result { try body(element.pointee) }
                            if !stopped { deliver(index, outcome) }
                        }
                    }
                    continue
                }
                _ = try hub.wait(in: readers, on: "Pool.imap")
            }
        } catch {
            stop()
            awaitWorkersShielded()
            throw error
        }
    }

    private func takeReady() -> Result<R, any Error>? {
        let outcome: Result<R, any Error>?
        switch mode {
        case .ordered: outcome = pending.removeValue(forKey: consumed)
        case .unordered: outcome = done.popFirst()
        case .collect: outcome = nil
        }
        if outcome != nil {
            consumed += 1
            if !space.isEmpty { space.grantAll() }
        }
        return outcome
    }
}

/// Thrown into a caller working on a map's element itself when the map
/// stops (another element failed); the map then throws that failure.
struct MapStopped: Error, CustomStringConvertible {
    var description: String { "the map stopped (another element failed)" }
}

/// The results of `imap` or `imapUnordered`, pulled one at a time:
///
/// ```swift
/// let results = pool.imap(urls) { try fetch($0) }
/// while let page = try results.next() { print(page.count) }
/// ```
///
/// Dropping it before the end stops the remaining work. Confined to the
/// hub's thread, like its group.
public final class MapResults<R> {
    private let nextResult: () throws -> R?
    private let stop: () -> Void

    init<E>(_ run: MapRun<E, R>) {
        nextResult = run.next
        stop = run.stop
    }

    deinit { stop() }

    /// The next result, waiting for it; nil after the last one. Throws the
    /// error of an element when the results reach it (the remaining work
    /// is stopped first), or if the caller is killed or times out (the
    /// work is stopped too).
    public func next() throws -> R? { try nextResult() }

    /// Every remaining result, waiting for each; throws as `next()` does.
    public func collect() throws -> [R] {
        var all: [R] = []
        while let r = try next() { all.append(r) }
        return all
    }
}
