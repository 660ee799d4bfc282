import CGreenLinux
import Foundation
import Glibc
import Green

/// What the primitives share: a processes-model primitive lives in a
/// `SharedRegion` and travels to a worker as the region's name (so it can
/// sit in a job's `Codable` input, as multiprocessing passes a Lock to a
/// Process); a greenlets or threads primitive stays in its process.
enum Shared {
    static func encode(_ region: SharedRegion?, what: String, to encoder: Encoder) throws {
        guard let region else {
            throw EncodingError.invalidValue(what, .init(codingPath: encoder.codingPath, debugDescription:
                "a greenlets or threads \(what) cannot travel to a worker process; make it with Model(.processes)"))
        }
        var c = encoder.singleValueContainer()
        try c.encode(region.name)
    }

    static func decode(from decoder: Decoder) throws -> SharedRegion {
        try SharedRegion.open(try decoder.singleValueContainer().decode(String.self))
    }
}

/// Where a primitive keeps its state on each model: the greenlets model's
/// `Green` primitive, the threads model's `Local` under a `Monitor`, or the
/// processes model's `SharedRegion`.
enum ModelBackend<GreenPrimitive, Local> {
    case green(GreenPrimitive)
    case thread(Monitor, Local)
    case process(SharedRegion)

    /// A new primitive's backend on `kind`: `green()`, or `local()` under a
    /// new monitor, or a new region of `dataBytes` that `prepare` sets up.
    init(_ kind: ModelKind, green: @autoclosure () -> GreenPrimitive, local: @autoclosure () -> Local,
         dataBytes: Int = 0, prepare: (SharedRegion) -> Void = { _ in }) throws {
        switch kind {
        case .greenlets: self = .green(green())
        case .threads: self = .thread(Monitor(), local())
        case .processes:
            let r = try SharedRegion(dataBytes: dataBytes)
            prepare(r)
            self = .process(r)
        }
    }

    /// The region, which is what travels to a worker process (nil on the
    /// greenlets and threads models, whose primitives cannot).
    var region: SharedRegion? {
        if case .process(let r) = self { return r }
        return nil
    }

    /// Changes the state and wakes its waiters: `green` on the greenlets
    /// model; `local` under the monitor, then a signal to one waiter
    /// (`wakeOne`) or a broadcast to all; `shared` under the region's
    /// mutex, then a broadcast.
    func update(green: (GreenPrimitive) throws -> Void, local: (Local) -> Void, wakeOne: Bool = false,
                shared: (SharedRegion) -> Void) rethrows {
        switch self {
        case .green(let g): try green(g)
        case .thread(let m, let state):
            m.locked {
                local(state)
                if wakeOne { m.signal() } else { m.broadcast() }
            }
        case .process(let r):
            r.locked {
                shared(r)
                r.broadcast()
            }
        }
    }
}

// MARK: - Lock

/// A lock: at most one holder. Greenlets: `Green.Lock`; threads: a pthread
/// mutex and condition; processes: a flag in shared memory under a
/// process-shared robust mutex (any process may release it, like
/// multiprocessing's Lock).
///
/// `@unchecked Sendable` (its backend is immutable): the threads backend's
/// flag is used only under its `Monitor`, the processes backend's slot
/// only under the region's mutex. A greenlets model's lock wraps a
/// `Green.Lock`, confined to the hub that made it: keep it on that thread
/// (the greenlets model is used from one thread; see `Model`).
public final class ModelLock: Codable, @unchecked Sendable {
    private let backend: ModelBackend<Green.Lock, Box<Bool>>

    init(_ kind: ModelKind) throws {
        backend = try ModelBackend(kind, green: Green.Lock(), local: Box(false))
    }

    public func acquire() throws {
        switch backend {
        case .green(let l): _ = try l.acquire()
        case .thread(let m, let held):
            m.locked {
                _ = m.wait(until: nil) { !held.value }
                held.value = true
            }
        case .process(let r):
            r.locked {
                _ = r.wait(until: nil) { r.slot(0).pointee == 0 }
                r.slot(0).pointee = 1
            }
        }
    }

    public func release() throws {
        try backend.update(green: { try $0.release() }, local: { $0.value = false }, wakeOne: true,
                           shared: { $0.slot(0).pointee = 0 })
    }

    public func withLock<T>(_ body: () throws -> T) throws -> T {
        try acquire()
        defer { try? release() }
        return try body()
    }

    public func encode(to encoder: Encoder) throws { try Shared.encode(backend.region, what: "lock", to: encoder) }

    public init(from decoder: Decoder) throws { backend = .process(try Shared.decode(from: decoder)) }
}

// MARK: - Event

/// A flag that can be set once and waited for.
///
/// `@unchecked Sendable` as `ModelLock` is: the flag under the `Monitor`
/// or the region's mutex; a greenlets model's `Green.Event` stays on the
/// thread that made it.
public final class ModelEvent: Codable, @unchecked Sendable {
    private let backend: ModelBackend<Green.Event, Box<Bool>>

    init(_ kind: ModelKind) throws {
        backend = try ModelBackend(kind, green: Green.Event(), local: Box(false))
    }

    public func set() {
        backend.update(green: { $0.set() }, local: { $0.value = true }, shared: { $0.slot(0).pointee = 1 })
    }

    public var isSet: Bool {
        switch backend {
        case .green(let e): return e.isSet
        case .thread(let m, let flag): return m.locked { flag.value }
        case .process(let r): return r.locked { r.slot(0).pointee != 0 }
        }
    }

    /// Waits until set; false if `timeout` passed first.
    @discardableResult
    public func wait(timeout: Double? = nil) throws -> Bool {
        switch backend {
        case .green(let e): return try e.wait(timeout: timeout)
        case .thread(let m, let flag):
            let end = deadline(after: timeout)
            return m.locked { m.wait(until: end) { flag.value } }
        case .process(let r):
            let end = deadline(after: timeout)
            return r.locked { r.wait(until: end) { r.slot(0).pointee != 0 } }
        }
    }

    public func encode(to encoder: Encoder) throws { try Shared.encode(backend.region, what: "event", to: encoder) }

    public init(from decoder: Decoder) throws { backend = .process(try Shared.decode(from: decoder)) }
}

// MARK: - Semaphore

/// A counting semaphore.
///
/// `@unchecked Sendable` as `ModelLock` is: the count under the `Monitor`
/// or the region's mutex; a greenlets model's `Green.Semaphore` stays on
/// the thread that made it.
public final class ModelSemaphore: Codable, @unchecked Sendable {
    private let backend: ModelBackend<Green.Semaphore, Box<Int>>

    init(_ kind: ModelKind, value: Int) throws {
        precondition(value >= 0, "a semaphore's value cannot be negative")
        backend = try ModelBackend(kind, green: Green.Semaphore(value: value), local: Box(value)) {
            $0.slot(0).pointee = Int64(value)
        }
    }

    public func acquire() throws {
        switch backend {
        case .green(let s): _ = try s.acquire()
        case .thread(let m, let value):
            m.locked {
                _ = m.wait(until: nil) { value.value > 0 }
                value.value -= 1
            }
        case .process(let r):
            r.locked {
                _ = r.wait(until: nil) { r.slot(0).pointee > 0 }
                r.slot(0).pointee -= 1
            }
        }
    }

    public func release() {
        backend.update(green: { $0.release() }, local: { $0.value += 1 }, wakeOne: true,
                       shared: { $0.slot(0).pointee += 1 })
    }

    public func encode(to encoder: Encoder) throws { try Shared.encode(backend.region, what: "semaphore", to: encoder) }

    public init(from decoder: Decoder) throws { backend = .process(try Shared.decode(from: decoder)) }
}

// MARK: - Counter

/// A shared integer with relaxed atomic loads, stores and adds: `add` never
/// loses an update; `unsafeIncrement` (a load, then a store) loses the
/// updates that interleave between them, as `counter += 1` does in
/// Python's threads, without a data race in Swift's sense.
///
/// `@unchecked Sendable`: both fields are immutable; the counter behind
/// `pointer` (its own allocation, freed in deinit, or a slot of `region`,
/// which it keeps mapped) is only ever used through C atomics.
public final class ModelCounter: Codable, @unchecked Sendable {
    private let pointer: UnsafeMutablePointer<Int64>
    private let region: SharedRegion?

    init(_ kind: ModelKind) throws {
        if kind == .processes {
            let r = try SharedRegion(dataBytes: 0)
            region = r
            pointer = r.slot(0)
        } else {
            region = nil
            pointer = .allocate(capacity: 1)
            pointer.initialize(to: 0)
        }
    }

    deinit { if region == nil { pointer.deallocate() } }

    public var value: Int { Int(green_atomic_load_relaxed(pointer)) }

    public func add(_ n: Int) { _ = green_atomic_add_relaxed(pointer, Int64(n)) }

    /// Read, then write back one more: updates made in between are lost.
    public func unsafeIncrement() {
        let v = green_atomic_load_relaxed(pointer)
        green_atomic_store_relaxed(pointer, v + 1)
    }

    public func encode(to encoder: Encoder) throws { try Shared.encode(region, what: "counter", to: encoder) }

    public init(from decoder: Decoder) throws {
        let r = try Shared.decode(from: decoder)
        region = r
        pointer = r.slot(0)
    }
}

/// A mutable value in a class, guarded by whoever holds it (the threads
/// backends: their `Monitor`). Not `Sendable` itself: it crosses threads
/// only inside a primitive whose conformance says how it is guarded.
final class Box<T> {
    var value: T
    init(_ value: T) { self.value = value }
}
