/// A growable ring buffer of `T` in manually allocated memory: the storage
/// of `Queue` and `LifoQueue`. Written against a raw pointer on purpose:
/// `Queue<T>` runs unspecialised (its client's `T` is not known to this
/// module), and code on `UnsafeMutablePointer<T>` then costs only `T`'s own
/// value witnesses, where a generic collection would look up the metadata
/// of its internal types on every call.
///
/// The buffer is its own: items are initialized exactly in the `count`
/// places from `head` (wrapping; `capacity` is 0 or a power of two), and
/// the owner calls `destroy` once, in its deinit. Not thread-safe: a
/// `Queue`'s, confined to its hub's thread.
struct RingBuffer<T> {
    private var buffer: UnsafeMutablePointer<T>?
    private var capacity = 0
    private var head = 0
    private(set) var count = 0

    /// Frees the storage and the items in it. The owner calls it once.
    mutating func destroy() {
        while count > 0 { _ = removeFirst() }
        buffer?.deallocate()
        buffer = nil
        capacity = 0
    }

    mutating func append(_ item: T) {
        if count == capacity { grow() }
        (buffer! + ((head + count) & (capacity - 1))).initialize(to: item)
        count += 1
    }

    mutating func removeFirst() -> T {
        precondition(count > 0)
        let item = (buffer! + head).move()
        head = (head + 1) & (capacity - 1)
        count -= 1
        return item
    }

    mutating func removeLast() -> T {
        precondition(count > 0)
        count -= 1
        return (buffer! + ((head + count) & (capacity - 1))).move()
    }

    var first: T? { count > 0 ? buffer![head] : nil }
    var last: T? { count > 0 ? buffer![(head + count - 1) & (capacity - 1)] : nil }

    private mutating func grow() {
        let newCapacity = Swift.max(16, capacity * 2)
        let newBuffer = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
        if let buffer {
            // Oldest first: the part from head to the end, then the wrapped part.
            let firstPart = Swift.min(count, capacity - head)
            newBuffer.moveInitialize(from: buffer + head, count: firstPart)
            (newBuffer + firstPart).moveInitialize(from: buffer, count: count - firstPart)
            buffer.deallocate()
        }
        buffer = newBuffer
        capacity = newCapacity
        head = 0
    }
}
