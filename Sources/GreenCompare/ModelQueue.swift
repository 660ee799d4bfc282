import DequeModule
import Foundation
import Glibc
import Green

/// A bounded FIFO queue with close: `put` waits while it is full, `get`
/// waits while it is empty and returns nil once it is closed and drained.
/// Greenlets: `Green.Queue`; threads: an array under a pthread mutex;
/// processes: a ring of encoded items in shared memory (as
/// multiprocessing's Queue pickles items through a pipe).
///
/// `@unchecked Sendable` as `ModelLock` is: the threads backend's ring
/// is used only under its `Monitor`, the processes backend's shared ring
/// only under the region's mutex; a greenlets model's `Green.Queue` stays
/// on the thread that made it.
public final class ModelQueue<Element: Codable & Sendable>: Codable, @unchecked Sendable {
    private let backend: ModelBackend<Green.Queue<Element>, LocalRing>
    public let capacity: Int

    /// The threads backend's items, used only under its `Monitor` (not
    /// `Sendable` itself: it crosses threads only inside the queue).
    final class LocalRing {
        var items = Deque<Element>()
        var closed = false
        var count: Int { items.count }
    }

    /// Bytes of shared ring per queue in the processes model; an encoded
    /// item must fit.
    public static var processRingBytes: Int { 1 << 20 }

    // Slots of the shared region.
    private static var headSlot: Int { 0 }      // byte offset of the oldest item
    private static var usedSlot: Int { 1 }      // bytes in use
    private static var countSlot: Int { 2 }     // items
    private static var closedSlot: Int { 3 }

    init(_ kind: ModelKind, capacity: Int) throws {
        precondition(capacity >= 1, "a queue needs a capacity of at least 1")
        self.capacity = capacity
        backend = try ModelBackend(kind, green: Green.Queue(maxSize: capacity), local: LocalRing(),
                                   dataBytes: ModelQueue.processRingBytes) { $0.slot(4).pointee = Int64(capacity) }
    }

    /// Adds `item`, waiting while the queue is full; throws
    /// `ModelQueueClosed` once the queue is closed.
    public func put(_ item: Element) throws {
        switch backend {
        case .green(let q):
            do { try q.put(item) } catch is QueueClosed { throw ModelQueueClosed() }
        case .thread(let m, let ring):
            try m.locked {
                _ = m.wait(until: nil) { ring.closed || ring.count < capacity }
                if ring.closed { throw ModelQueueClosed() }
                ring.items.append(item)
                m.broadcast()
            }
        case .process(let r):
            let bytes = [UInt8](try JSONEncoder().encode(item))
            let need = 4 + bytes.count
            guard need <= r.dataBytes else {
                throw ModelQueueItemTooLarge(bytes: bytes.count, limit: r.dataBytes - 4)
            }
            try r.locked {
                _ = r.wait(until: nil) {
                    r.slot(ModelQueue.closedSlot).pointee != 0
                        || (r.slot(ModelQueue.countSlot).pointee < r.slot(4).pointee
                            && Int(r.slot(ModelQueue.usedSlot).pointee) + need <= r.dataBytes)
                }
                if r.slot(ModelQueue.closedSlot).pointee != 0 { throw ModelQueueClosed() }
                let tail = (Int(r.slot(ModelQueue.headSlot).pointee) + Int(r.slot(ModelQueue.usedSlot).pointee)) % r.dataBytes
                var length = UInt32(bytes.count).littleEndian
                withUnsafeBytes(of: &length) { ModelQueue.copyIn(r, at: tail, from: $0) }
                bytes.withUnsafeBytes { ModelQueue.copyIn(r, at: (tail + 4) % r.dataBytes, from: $0) }
                r.slot(ModelQueue.usedSlot).pointee += Int64(need)
                r.slot(ModelQueue.countSlot).pointee += 1
                r.broadcast()
            }
        }
    }

    /// The oldest item, waiting while the queue is empty; nil once it is
    /// closed and drained.
    public func get() throws -> Element? {
        switch backend {
        case .green(let q):
            return try q.receive()
        case .thread(let m, let ring):
            return m.locked {
                _ = m.wait(until: nil) { ring.closed || ring.count > 0 }
                guard let item = ring.items.popFirst() else { return nil }
                m.broadcast()
                return item
            }
        case .process(let r):
            let bytes: [UInt8]? = r.locked {
                _ = r.wait(until: nil) {
                    r.slot(ModelQueue.closedSlot).pointee != 0 || r.slot(ModelQueue.countSlot).pointee > 0
                }
                guard r.slot(ModelQueue.countSlot).pointee > 0 else { return nil }
                let head = Int(r.slot(ModelQueue.headSlot).pointee)
                var header = [UInt8](repeating: 0, count: 4)
                header.withUnsafeMutableBytes { ModelQueue.copyOut(r, at: head, to: $0) }
                let length = Int(UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24)
                var body = [UInt8](repeating: 0, count: length)
                body.withUnsafeMutableBytes { ModelQueue.copyOut(r, at: (head + 4) % r.dataBytes, to: $0) }
                r.slot(ModelQueue.headSlot).pointee = Int64((head + 4 + length) % r.dataBytes)
                r.slot(ModelQueue.usedSlot).pointee -= Int64(4 + length)
                r.slot(ModelQueue.countSlot).pointee -= 1
                r.broadcast()
                return body
            }
            guard let bytes else { return nil }
            return try JSONDecoder().decode(Element.self, from: Data(bytes))
        }
    }

    /// No more puts; gets drain what is left, then return nil.
    public func close() {
        backend.update(green: { $0.close() }, local: { $0.closed = true },
                       shared: { $0.slot(ModelQueue.closedSlot).pointee = 1 })
    }

    private static func copyIn(_ r: SharedRegion, at offset: Int, from bytes: UnsafeRawBufferPointer) {
        let first = min(bytes.count, r.dataBytes - offset)
        (r.data + offset).copyMemory(from: bytes.baseAddress!, byteCount: first)
        if first < bytes.count { r.data.copyMemory(from: bytes.baseAddress! + first, byteCount: bytes.count - first) }
    }

    private static func copyOut(_ r: SharedRegion, at offset: Int, to bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let first = min(bytes.count, r.dataBytes - offset)
        bytes.baseAddress!.copyMemory(from: r.data + offset, byteCount: first)
        if first < bytes.count { (bytes.baseAddress! + first).copyMemory(from: r.data, byteCount: bytes.count - first) }
    }

    public func encode(to encoder: Encoder) throws { try Shared.encode(backend.region, what: "queue", to: encoder) }

    public init(from decoder: Decoder) throws {
        let r = try Shared.decode(from: decoder)
        backend = .process(r)
        capacity = Int(r.slot(4).pointee)
    }
}

/// `put` on a closed queue.
public struct ModelQueueClosed: Error, CustomStringConvertible {
    public var description: String { "the queue is closed" }
}

/// An item that does not fit a processes-model queue's shared ring.
public struct ModelQueueItemTooLarge: Error, CustomStringConvertible {
    public let bytes: Int
    public let limit: Int
    public var description: String { "an item of \(bytes) encoded bytes does not fit the queue's shared buffer (\(limit) bytes)" }
}

/// One end of a duplex pipe between two tasks (multiprocessing's `Pipe`):
/// `send` goes to the other end's `receive`, in order; `close` ends this
/// end's sending, and the other end's `receive` returns nil once it has
/// drained. Built on two bounded queues, one each way, so it works the
/// same on every model and travels to a worker process inside a job's
/// input.
public final class ModelPipeEnd<Element: Codable & Sendable>: Codable, Sendable {
    private let outgoing: ModelQueue<Element>
    private let incoming: ModelQueue<Element>

    init(outgoing: ModelQueue<Element>, incoming: ModelQueue<Element>) {
        self.outgoing = outgoing
        self.incoming = incoming
    }

    /// Sends `item` to the other end, waiting while `capacity` items are
    /// unread; throws `ModelQueueClosed` after `close`.
    public func send(_ item: Element) throws { try outgoing.put(item) }

    /// The next item from the other end; nil once it closed and all it
    /// sent has been read.
    public func receive() throws -> Element? { try incoming.get() }

    /// No more sends from this end.
    public func close() { outgoing.close() }

    private enum Keys: String, CodingKey { case outgoing, incoming }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(outgoing, forKey: .outgoing)
        try c.encode(incoming, forKey: .incoming)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        outgoing = try c.decode(ModelQueue<Element>.self, forKey: .outgoing)
        incoming = try c.decode(ModelQueue<Element>.self, forKey: .incoming)
    }
}
