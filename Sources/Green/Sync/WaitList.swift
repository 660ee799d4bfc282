// The wait list under every lock, semaphore, condition and queue.
//
// A waiter is a node in the waiting greenlet's context, its wait record
// (`Hub.takeWaitRecord`): its address is stable for the whole wait, and
// waiting allocates nothing. Not on the greenlet's stack: a compact
// greenlet's stack is not there while it is parked, and wakers and
// neighbours write into nodes.
// Nodes form a FIFO, doubly linked so that a waiter that times out or is
// killed unlinks itself in O(1).
//
// Waking is a *grant*: the waker unlinks the first waiter, records the
// outcome in its node (and, for queues, moves an item through the node's
// slot) and makes it ready. Only a waiter whose greenlet is still parked
// can be granted. One that an interrupt has already made ready is about
// to throw; it stays in the list, is skipped, and unlinks itself on its
// way out. So a grant is never lost to a waiter that is leaving, and a
// waiter never both throws and receives.
//
// Hub thread only, like the primitives built on it. The raw node pointers
// and unretained greenlets are sound by invariants 1, 2 and 4 in
// Hub.swift: a node is linked only while its greenlet is inside `wait`,
// which unlinks it (`defer`) before the node's memory goes.

/// One greenlet's place in a `WaitList`.
struct WaitNode {
    enum Outcome: UInt8 {
        case waiting
        /// The waker gave the waiter what it waited for.
        case granted
        /// The primitive was closed: the waiter must re-check and leave.
        case closed
    }

    /// Unretained: a waiter is parked or about to leave, so its hub holds it.
    let waiter: Unmanaged<AnyGreenlet>
    var greenlet: AnyGreenlet { waiter.takeUnretainedValue() }
    var next: UnsafeMutablePointer<WaitNode>?
    var prev: UnsafeMutablePointer<WaitNode>?
    var linked = false
    var outcome = Outcome.waiting
    /// What passes through the node: a queue item, a count.
    var slot: UnsafeMutableRawPointer?
    /// A number the primitive keeps per waiter (a semaphore's count).
    var count = 0

    init(greenlet: AnyGreenlet, slot: UnsafeMutableRawPointer?) {
        waiter = Unmanaged.passUnretained(greenlet)
        self.slot = slot
    }
}

final class WaitList {
    @exclusivity(unchecked) private(set) var head: UnsafeMutablePointer<WaitNode>?
    @exclusivity(unchecked) private var tail: UnsafeMutablePointer<WaitNode>?
    /// Linked waiters, including ones about to leave.
    @exclusivity(unchecked) private(set) var count = 0

    var isEmpty: Bool { head == nil }

    func append(_ n: UnsafeMutablePointer<WaitNode>) {
        n.pointee.prev = tail
        n.pointee.next = nil
        n.pointee.linked = true
        if let t = tail { t.pointee.next = n } else { head = n }
        tail = n
        count += 1
    }

    func remove(_ n: UnsafeMutablePointer<WaitNode>) {
        guard n.pointee.linked else { return }
        let prev = n.pointee.prev, next = n.pointee.next
        if let prev { prev.pointee.next = next } else { head = next }
        if let next { next.pointee.prev = prev } else { tail = prev }
        n.pointee.linked = false
        n.pointee.next = nil
        n.pointee.prev = nil
        count -= 1
    }

    /// The first waiter that can still be granted (its greenlet is
    /// parked), left linked; nil if none.
    @inline(__always)
    func firstGrantable() -> UnsafeMutablePointer<WaitNode>? {
        var cursor = head
        while let n = cursor {
            if n.pointee.waiter._withUnsafeGuaranteedRef({ $0.state == .parked }) { return n }
            cursor = n.pointee.next
        }
        return nil
    }

    /// Unlinks `n` (from `firstGrantable`), records `outcome` and makes its
    /// greenlet ready.
    @inline(__always)
    func grant(_ n: UnsafeMutablePointer<WaitNode>, _ outcome: WaitNode.Outcome = .granted) {
        remove(n)
        n.pointee.outcome = outcome
        // The waiter's hub is this thread's: primitives are confined to it.
        n.pointee.waiter._withUnsafeGuaranteedRef { g in Hub.withCurrent { $0.ready(g) } }
    }

    /// Grants the first grantable waiter, if any; returns whether one was.
    @discardableResult
    func grantFirst() -> Bool {
        guard let n = firstGrantable() else { return false }
        grant(n)
        return true
    }

    /// Grants every grantable waiter with `outcome`, in order; returns
    /// how many. Waiters about to leave stay linked.
    @discardableResult
    func grantAll(_ outcome: WaitNode.Outcome = .granted) -> Int {
        var granted = 0
        var cursor = head
        while let n = cursor {
            cursor = n.pointee.next
            if n.pointee.waiter._withUnsafeGuaranteedRef({ $0.state == .parked }) {
                grant(n, outcome)
                granted += 1
            }
        }
        return granted
    }
}

extension Hub {
    /// Parks the calling greenlet in `list` until a waker grants it or
    /// closes the list, and returns that outcome. Throws when the greenlet
    /// is killed or a timeout expires; the node is unlinked whatever
    /// happens. `slot` is where a waker reads or writes an item, `count`
    /// what the waiter asks for. `takeDirectly` is asked before every park
    /// whether what the waiter needs is available without a grant (it
    /// takes it and returns true); it guards against a waiter that woke
    /// for another reason parking again while it could proceed.
    @inline(__always)
    func wait(in list: WaitList, on what: StaticString, slot: UnsafeMutableRawPointer? = nil,
              count: Int = 0, takeDirectly: () -> Bool = { false }) throws -> WaitNode.Outcome {
        return try withCurrentGreenlet { g in
            let node = takeWaitRecord(WaitNode.self, for: g)
            node.initialize(to: WaitNode(greenlet: g, slot: slot))
            node.pointee.count = count
            list.append(node)
            defer {
                list.remove(node)
                node.deinitialize(count: 1)
                releaseWaitRecord(node, of: g)
            }
            while node.pointee.outcome == .waiting {
                if takeDirectly() { return .granted }
                try park(g, on: what)
            }
            return node.pointee.outcome
        }
    }

    /// `wait(in:on:timeout:...)` on the calling thread's hub.
    @inline(__always)
    static func wait(in list: WaitList, on what: StaticString, timeout: Double?,
                     slot: UnsafeMutableRawPointer? = nil, count: Int = 0,
                     takeDirectly: () -> Bool = { false }) throws -> WaitNode.Outcome? {
        try withCurrent {
            try $0.wait(in: list, on: what, timeout: timeout, slot: slot, count: count, takeDirectly: takeDirectly)
        }
    }

    /// `wait(in:on:)` with an optional deadline of `timeout` seconds;
    /// returns nil if it expired first.
    @inline(__always)
    func wait(in list: WaitList, on what: StaticString, timeout: Double?,
              slot: UnsafeMutableRawPointer? = nil, count: Int = 0,
              takeDirectly: () -> Bool = { false }) throws -> WaitNode.Outcome? {
        guard let timeout else {
            return try wait(in: list, on: what, slot: slot, count: count, takeDirectly: takeDirectly)
        }
        // The deadline's setup and its error's test are out of line: a
        // blocking call's frame stays on a parked greenlet's stack (in a
        // compact greenlet's image), and they would take slots in it.
        let deadline = startDeadline(timeout)
        defer { deadline.cancel() }
        do {
            return try wait(in: list, on: what, slot: slot, count: count, takeDirectly: takeDirectly)
        } catch {
            if deadline.raised(error) { return nil }
            throw error
        }
    }

    /// A started `Timeout` for a wait with a deadline.
    @inline(never)
    func startDeadline(_ seconds: Double) -> Timeout {
        let t = Timeout(seconds)
        t.start()
        return t
    }
}

extension Timeout {
    /// Whether `error` is this timeout's expiry.
    @inline(never)
    func raised(_ error: any Error) -> Bool {
        (error as? TimeoutError)?.isFrom(self) ?? false
    }
}
