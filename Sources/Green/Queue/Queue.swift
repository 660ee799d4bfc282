/// A FIFO queue between greenlets, like gevent's `Queue`: bounded
/// (`maxSize`) or not. `put` waits while a bounded queue is full, `get`
/// while it is empty; both take a timeout, and each has a variant that
/// never waits. Waiters are served in the order they came, and an item put
/// while a getter waits goes straight to that getter.
///
/// `close()` ends the queue without sentinels: later `put`s throw
/// `QueueClosed`, and `get` hands out what is left, then throws
/// `QueueClosed` (`receive` returns nil, and `for item in queue` ends).
///
/// ```swift
/// let jobs = Queue<URL>(maxSize: 100)
/// spawn { for url in urls { try jobs.put(url) }; jobs.close() }
/// for url in jobs { try fetch(url) }
/// ```
///
/// `maxSize: 0` is a rendezvous: `put` waits until a getter takes the item
/// (see `Channel`). Subclasses change the order (`LifoQueue`,
/// `PriorityQueue`) or count tasks (`JoinableQueue`). Confined to the hub's
/// thread.
public class Queue<T> {
    /// The most items the queue holds; nil when unbounded.
    public let maxSize: Int?
    @exclusivity(unchecked) var items = RingBuffer<T>()
    let getters = WaitList()
    let putters = WaitList()
    /// Whether `close()` was called (items may still be left to get).
    @exclusivity(unchecked) public private(set) var isClosed = false

    /// An empty queue holding at most `maxSize` items (unbounded if nil;
    /// `0` makes every `put` wait for a getter).
    public init(maxSize: Int? = nil) {
        precondition((maxSize ?? 0) >= 0, "Queue(maxSize:) needs a size of at least 0, got \(maxSize!)")
        self.maxSize = maxSize
        capacity = maxSize ?? Int.max
    }

    deinit {
        items.destroy()
        spareSlot?.deallocate()
    }

    /// One item-sized block kept for the next waiter (raw: a stored
    /// `UnsafeMutablePointer<T>?` costs a metadata lookup per use here).
    /// A borrowed slot is the waiting call's until it returns; a waker
    /// moves an item into or out of it only through the waiter's linked
    /// node (see WaitList.swift), and the call moves out or deinitializes
    /// what is left before it gives the slot back.
    @exclusivity(unchecked) private var spareSlot: UnsafeMutableRawPointer?

    /// Memory for one item, for a waiter to pass its item through. Not
    /// `withUnsafeTemporaryAllocation`: in unspecialised code that builds
    /// a `Result<T, _>` type per call.
    private func borrowSlot() -> UnsafeMutablePointer<T> {
        if let s = spareSlot {
            spareSlot = nil
            return s.assumingMemoryBound(to: T.self)
        }
        return .allocate(capacity: 1)
    }

    private func returnSlot(_ slot: UnsafeMutablePointer<T>) {
        if spareSlot == nil { spareSlot = UnsafeMutableRawPointer(slot) } else { slot.deallocate() }
    }

    /// `maxSize`, or `Int.max`.
    private let capacity: Int

    // MARK: - Storage (the order), overridden by subclasses

    func store(_ item: T) { items.append(item) }
    /// Removes the next item; there is one.
    func takeStored() -> T { items.removeFirst() }
    func peekStored() -> T? { items.first }
    var storedCount: Int { items.count }
    /// Called once per item accepted by `put`, whichever way it entered
    /// (stored, handed to a getter, or taken from a waiting putter).
    func didPut() {}
    var typeName: String { "Queue" }

    // MARK: - State

    /// Items waiting in the queue (not counting blocked `put`s).
    public var count: Int { storedCount }
    /// Whether no item is waiting in the queue.
    public var isEmpty: Bool { storedCount == 0 }
    /// Whether `put` would wait now.
    public var isFull: Bool {
        guard let maxSize else { return false }
        return storedCount >= maxSize && getters.firstGrantable() == nil
    }
    /// Greenlets waiting in `get`.
    public var waitingGetters: Int { getters.count }
    /// Greenlets waiting in `put`.
    public var waitingPutters: Int { putters.count }

    /// The item `get` would return next, without removing it; never waits.
    public func peek() -> T? { peekStored() }

    // MARK: - Put

    /// Adds `item`, waiting while the queue is full, at most `timeout`
    /// seconds: then it throws `QueueFull` and the item is not added.
    /// Throws `QueueClosed` if the queue is closed, before or during the
    /// wait. Throws if the caller is killed or an enclosing timeout
    /// expires; the item is then not added.
    public func put(_ item: T, timeout: Double? = nil) throws {
        if isClosed { throw QueueClosed(queue: typeName) }
        if offer(item) { return }
        try putWaiting(item, timeout: timeout)
    }

    // The waiting half of `put`, apart so that the fast path carries none
    // of its set-up.
    @inline(never)
    private func putWaiting(_ item: T, timeout: Double?) throws {
        let slot = borrowSlot()
        defer { returnSlot(slot) }
        do {
            slot.initialize(to: item)
            // Until a getter (or `takeDirectly`) moves the item out.
            var handedOver = false
            defer { if !handedOver { slot.deinitialize(count: 1) } }
            let outcome = try Hub.wait(
                in: putters, on: "Queue.put", timeout: timeout, slot: UnsafeMutableRawPointer(slot),
                takeDirectly: {
                    guard !self.isClosed, self.canAccept else { return false }
                    _ = self.offer(slot.move())
                    return true
                })
            switch outcome {
            case .granted?: handedOver = true
            case .closed?: throw QueueClosed(queue: typeName)
            case .waiting?, nil: throw QueueFull(queue: typeName, maxSize: maxSize ?? 0)
            }
        }
    }

    /// Adds `item` if that needs no wait; otherwise throws `QueueFull` (or
    /// `QueueClosed`).
    public func putNowait(_ item: T) throws {
        if isClosed { throw QueueClosed(queue: typeName) }
        if !offer(item) { throw QueueFull(queue: typeName, maxSize: maxSize ?? 0) }
    }

    /// Whether `offer` would take an item now.
    private var canAccept: Bool {
        getters.firstGrantable() != nil || storedCount < capacity
    }

    /// Hands `item` to the first waiting getter, or stores it if there is
    /// room. Returns false (and keeps nothing) if neither.
    @inline(__always)
    private func offer(_ item: T) -> Bool {
        if !getters.isEmpty, let n = getters.firstGrantable() {
            // A getter only waits on an empty queue: it is next in line.
            n.pointee.slot!.assumingMemoryBound(to: T.self).initialize(to: item)
            getters.grant(n)
        } else if storedCount < capacity {
            store(item)
        } else {
            return false
        }
        didPut()
        return true
    }

    // MARK: - Get

    /// Removes and returns the next item, waiting while the queue is empty,
    /// at most `timeout` seconds: then it throws `QueueEmpty`. Throws
    /// `QueueClosed` once the queue is closed and empty. Throws if the
    /// caller is killed or an enclosing timeout expires; no item is taken.
    public func get(timeout: Double? = nil) throws -> T {
        if storedCount > 0 { return takeAndRefill() }
        if !putters.isEmpty, let n = putters.firstGrantable() { return takeFromPutter(n) }
        if isClosed { throw QueueClosed(queue: typeName) }
        return try getWaiting(timeout: timeout)
    }

    @inline(never)
    private func getWaiting(timeout: Double?) throws -> T {
        let slot = borrowSlot()
        defer { returnSlot(slot) }
        do {
            let outcome = try Hub.wait(
                in: getters, on: "Queue.get", timeout: timeout, slot: UnsafeMutableRawPointer(slot),
                takeDirectly: {
                    if self.storedCount > 0 {
                        slot.initialize(to: self.takeAndRefill())
                    } else if !self.putters.isEmpty, let n = self.putters.firstGrantable() {
                        slot.initialize(to: self.takeFromPutter(n))
                    } else {
                        return false
                    }
                    return true
                })
            switch outcome {
            case .granted?: return slot.move()
            case .closed?: throw QueueClosed(queue: typeName)
            case .waiting?, nil: throw QueueEmpty(queue: typeName)
            }
        }
    }

    /// Removes and returns the next item if that needs no wait; otherwise
    /// throws `QueueEmpty` (or `QueueClosed` once closed and drained).
    public func getNowait() throws -> T {
        if storedCount > 0 { return takeAndRefill() }
        if !putters.isEmpty, let n = putters.firstGrantable() { return takeFromPutter(n) }
        if isClosed { throw QueueClosed(queue: typeName) }
        throw QueueEmpty(queue: typeName)
    }

    /// Like `get()`, but returns nil once the queue is closed and drained:
    /// `while let item = try queue.receive() { ... }`. Otherwise waits and
    /// throws as `get()` does.
    public func receive() throws -> T? {
        do {
            return try get()
        } catch is QueueClosed {
            return nil
        }
    }

    /// The next stored item; the first waiting putter's item takes the
    /// freed place.
    @inline(__always)
    private func takeAndRefill() -> T {
        let item = takeStored()
        if !putters.isEmpty, let n = putters.firstGrantable() {
            store(n.pointee.slot!.assumingMemoryBound(to: T.self).move())
            putters.grant(n)
            didPut()
        }
        return item
    }

    /// The item of waiting putter `n`, with nothing stored (a rendezvous).
    @inline(__always)
    private func takeFromPutter(_ n: UnsafeMutablePointer<WaitNode>) -> T {
        let item = n.pointee.slot!.assumingMemoryBound(to: T.self).move()
        putters.grant(n)
        didPut()
        return item
    }

    // MARK: - Close

    /// Closes the queue: `put` throws `QueueClosed` from now on (greenlets
    /// waiting in `put` too, their items not added), and `get` returns the
    /// items already in, then throws `QueueClosed`. Closing twice does
    /// nothing.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        putters.grantAll(.closed)
        // Getters wait only on an empty queue: nothing more will come.
        getters.grantAll(.closed)
    }
}

extension Queue: Sequence {
    /// Iterates by `receive()` until the queue is closed and drained.
    ///
    /// A `for` loop cannot throw from its iterator: if the greenlet is
    /// killed or a timeout expires while the loop waits, the loop ends and
    /// the interrupt is thrown at the greenlet's next blocking call. Where
    /// that difference matters, loop with `while let item = try
    /// queue.receive()`.
    public struct Iterator: IteratorProtocol {
        let queue: Queue<T>

        /// The next item by `receive()` (blocking only the calling
        /// greenlet); nil once the queue is closed and drained, or when
        /// the greenlet is interrupted, as the type's comment says.
        public mutating func next() -> T? {
            do {
                return try queue.receive()
            } catch {
                let hub = Hub.current
                hub.rearmLastInterrupt(hub.current)
                return nil
            }
        }
    }

    /// An iterator that takes items until the queue is closed and
    /// drained.
    public func makeIterator() -> Iterator { Iterator(queue: self) }
}

/// `put` on a full queue that could not wait (`putNowait`) or whose wait
/// timed out.
public struct QueueFull: Error, CustomStringConvertible {
    /// The queue's kind ("Queue", "Channel", ...).
    public let queue: String
    /// Its `maxSize`.
    public let maxSize: Int
    /// "<queue> is full (maxSize N)".
    public var description: String { "\(queue) is full (maxSize \(maxSize))" }
}

/// `get` on an empty queue that could not wait (`getNowait`) or whose
/// wait timed out.
public struct QueueEmpty: Error, CustomStringConvertible {
    /// The queue's kind ("Queue", "Channel", ...).
    public let queue: String
    /// "<queue> is empty".
    public var description: String { "\(queue) is empty" }
}

/// `put` on a closed queue, or `get` on a closed queue with nothing left.
public struct QueueClosed: Error, CustomStringConvertible {
    /// The queue's kind ("Queue", "Channel", ...).
    public let queue: String
    /// "<queue> is closed".
    public var description: String { "\(queue) is closed" }
}
