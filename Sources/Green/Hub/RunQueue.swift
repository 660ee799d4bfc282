/// The hub's FIFO of greenlets ready to run: a growable ring buffer of
/// unretained references. Entries stay alive because the hub holds a
/// reference to every unfinished greenlet (taken at spawn, dropped after
/// the greenlet finished and left this queue: invariant 2 in Hub.swift).
/// Its buffer is its own, freed with it; the capacity stays a power of
/// two (the index masks rely on it). Hub thread only.
struct RunQueue: ~Copyable {
    private var buffer: UnsafeMutablePointer<Unmanaged<AnyGreenlet>>
    private var capacity: Int
    private var head = 0
    private(set) var count = 0

    init(capacity: Int = 256) {
        self.capacity = capacity
        buffer = .allocate(capacity: capacity)
    }

    deinit { buffer.deallocate() }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    mutating func append(_ g: Unmanaged<AnyGreenlet>) {
        if count == capacity { grow() }
        buffer[(head + count) & (capacity - 1)] = g
        count += 1
    }

    mutating func popFirst() -> AnyGreenlet? {
        guard count > 0 else { return nil }
        let g = buffer[head].takeUnretainedValue()
        head = (head + 1) & (capacity - 1)
        count -= 1
        return g
    }

    mutating func popFirstUnmanaged() -> Unmanaged<AnyGreenlet>? {
        guard count > 0 else { return nil }
        let g = buffer[head]
        head = (head + 1) & (capacity - 1)
        count -= 1
        return g
    }

    /// Removes every entry, oldest first, handing each to `body`.
    mutating func drain(_ body: (AnyGreenlet) -> Void) {
        while let g = popFirst() { body(g) }
    }

    private mutating func grow() {
        let newCapacity = capacity * 2
        let newBuffer = UnsafeMutablePointer<Unmanaged<AnyGreenlet>>.allocate(capacity: newCapacity)
        for i in 0..<count {
            newBuffer[i] = buffer[(head + i) & (capacity - 1)]
        }
        buffer.deallocate()
        buffer = newBuffer
        capacity = newCapacity
        head = 0
    }
}
