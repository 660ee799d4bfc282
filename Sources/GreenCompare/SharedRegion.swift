import Foundation
import Glibc
import Green

/// A POSIX shared-memory segment holding a process-shared (and robust)
/// pthread mutex, a condition variable, a few 64-bit slots and a data
/// area: what the processes model builds its Lock, Event, Semaphore,
/// Counter and Queue on. The creating process owns the name and unlinks
/// it when the region goes; workers open it by name (a region travels to
/// a worker as its name, inside a job's Codable input).
///
/// `@unchecked Sendable`: `name`, `size`, `base` and `owner` are immutable
/// and the mapping lives as long as the object. The shared memory itself
/// is read and written, by every thread and process, only with the
/// region's process-shared mutex held (`locked`), except what its creator
/// writes before anyone else can have its name (initial values, a
/// queue's capacity) and `ModelCounter`'s slot, used atomically.
final class SharedRegion: @unchecked Sendable {
    let name: String
    let size: Int
    let base: UnsafeMutableRawPointer
    private let owner: Bool

    static let mutexOffset = 0
    static let condOffset = 64
    static let slotsOffset = 128
    static let slotCount = 8
    static let dataOffset = 192

    /// Regions made by this process so far (for their names), and the
    /// regions it opened by name, shared by every live handle (weakly: a
    /// worker that served many jobs keeps only the regions its current
    /// values still use mapped).
    private static let registry = Locked((made: 0, opened: [String: Weak]()))

    private struct Weak {
        weak var region: SharedRegion?
    }

    /// Creates a region with `dataBytes` of data area.
    init(dataBytes: Int) throws {
        let n = SharedRegion.registry.withLock { r -> Int in
            r.made += 1
            return r.made
        }
        name = "/swift-green-compare.\(getpid()).\(n)"
        size = SharedRegion.dataOffset + dataBytes
        let fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SharedRegionError(what: "shm_open \(name)", errno: errno) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = errno
            shm_unlink(name)
            throw SharedRegionError(what: "ftruncate \(name) to \(size) bytes", errno: e)
        }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            let e = errno
            shm_unlink(name)
            throw SharedRegionError(what: "mmap \(name)", errno: e)
        }
        base = p
        owner = true
        var mutexAttributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&mutexAttributes)
        pthread_mutexattr_setpshared(&mutexAttributes, Int32(PTHREAD_PROCESS_SHARED))
        // Robust: a worker killed while holding the mutex does not wedge
        // everyone else (the next locker gets EOWNERDEAD and recovers).
        pthread_mutexattr_setrobust(&mutexAttributes, Int32(PTHREAD_MUTEX_ROBUST))
        pthread_mutex_init(mutex, &mutexAttributes)
        pthread_mutexattr_destroy(&mutexAttributes)
        var condAttributes = pthread_condattr_t()
        pthread_condattr_init(&condAttributes)
        pthread_condattr_setpshared(&condAttributes, Int32(PTHREAD_PROCESS_SHARED))
        pthread_condattr_setclock(&condAttributes, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &condAttributes)
        pthread_condattr_destroy(&condAttributes)
    }

    private init(opening name: String) throws {
        let fd = shm_open(name, O_RDWR | O_CLOEXEC, 0)
        guard fd >= 0 else { throw SharedRegionError(what: "shm_open \(name)", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SharedRegionError(what: "fstat \(name)", errno: errno) }
        guard let p = mmap(nil, Int(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw SharedRegionError(what: "mmap \(name)", errno: errno)
        }
        self.name = name
        size = Int(st.st_size)
        base = p
        owner = false
    }

    /// The region called `name`, opened once per process.
    static func open(_ name: String) throws -> SharedRegion {
        try registry.withLock { registry in
            if let r = registry.opened[name]?.region { return r }
            let r = try SharedRegion(opening: name)
            registry.opened = registry.opened.filter { $0.value.region != nil }
            registry.opened[name] = Weak(region: r)
            return r
        }
    }

    deinit {
        if owner {
            pthread_cond_destroy(cond)
            pthread_mutex_destroy(mutex)
            shm_unlink(name)
        }
        munmap(base, size)
    }

    var mutex: UnsafeMutablePointer<pthread_mutex_t> {
        (base + SharedRegion.mutexOffset).assumingMemoryBound(to: pthread_mutex_t.self)
    }
    var cond: UnsafeMutablePointer<pthread_cond_t> {
        (base + SharedRegion.condOffset).assumingMemoryBound(to: pthread_cond_t.self)
    }
    func slot(_ i: Int) -> UnsafeMutablePointer<Int64> {
        (base + SharedRegion.slotsOffset + 8 * i).assumingMemoryBound(to: Int64.self)
    }
    var data: UnsafeMutableRawPointer { base + SharedRegion.dataOffset }
    var dataBytes: Int { size - SharedRegion.dataOffset }

    /// Runs `body` with the mutex held.
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        if pthread_mutex_lock(mutex) == EOWNERDEAD {
            // Its holder died mid-update: the state is what it left.
            pthread_mutex_consistent(mutex)
        }
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// With the mutex held: waits until `ready()` or the deadline.
    func wait(until deadline: Double?, _ ready: () -> Bool) -> Bool {
        while !ready() {
            var rc: Int32
            if let deadline {
                guard var until = monotonicTimespec(deadline) else { return false }
                rc = pthread_cond_timedwait(cond, mutex, &until)
            } else {
                rc = pthread_cond_wait(cond, mutex)
            }
            if rc == EOWNERDEAD { pthread_mutex_consistent(mutex) }
        }
        return true
    }

    func broadcast() { pthread_cond_broadcast(cond) }
}

struct SharedRegionError: Error, CustomStringConvertible {
    let what: String
    let errno: Int32
    var description: String { "\(what): \(String(cString: strerror(errno)))" }
}
