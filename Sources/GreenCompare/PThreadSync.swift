import Glibc
import Green

/// A pthread mutex with one condition variable: the threads model's
/// building block (real kernel-backed blocking, as Python's threading
/// uses). Waits use CLOCK_MONOTONIC deadlines.
///
/// `@unchecked Sendable`: its only fields are the pointers to the mutex
/// and condition, immutable (made in `init`, destroyed in `deinit`, so
/// they never move); pthreads synchronises every use.
final class Monitor: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits (the mutex held) until `ready()` or the deadline; returns
    /// whether `ready()` holds.
    func wait(until deadline: Double?, _ ready: () -> Bool) -> Bool {
        while !ready() {
            if let deadline {
                guard var until = monotonicTimespec(deadline) else { return false }
                pthread_cond_timedwait(cond, mutex, &until)
            } else {
                pthread_cond_wait(cond, mutex)
            }
        }
        return true
    }

    func signal() { pthread_cond_signal(cond) }
    func broadcast() { pthread_cond_broadcast(cond) }
}

/// Seconds on CLOCK_MONOTONIC: system-wide, so comparable across the
/// processes of a run.
public func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// `deadline` (in `monotonicSeconds`) as the absolute CLOCK_MONOTONIC
/// time pthread_cond_timedwait takes; nil once it has passed.
func monotonicTimespec(_ deadline: Double) -> timespec? {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    let remaining = deadline - (Double(t.tv_sec) + Double(t.tv_nsec) / 1e9)
    guard remaining > 0 else { return nil }
    var sec = t.tv_sec + Int(remaining)
    var nsec = t.tv_nsec + Int((remaining - remaining.rounded(.down)) * 1e9)
    if nsec >= 1_000_000_000 {
        sec += 1
        nsec -= 1_000_000_000
    }
    return timespec(tv_sec: sec, tv_nsec: nsec)
}

func deadline(after timeout: Double?) -> Double? { timeout.map { monotonicSeconds() + max(0, $0) } }

/// A joinable thread running a closure; `join` waits for it.
final class OSThreadHandle: Sendable {
    private let thread: pthread_t

    /// Starts `body` on a new thread; throws `OSThreadError` (EAGAIN when
    /// the system is out of threads or memory for stacks).
    init(stackSize: Int = 0, _ body: @escaping @Sendable () -> Void) throws {
        thread = try OSThread.create(stackSize: stackSize, detached: false, body).get()
    }

    func join() { pthread_join(thread, nil) }

    /// Lets the thread end on its own (nobody will join it).
    func detach() { pthread_detach(thread) }
}

/// A value per OS thread, made on first use and released when the thread
/// ends (a pthread key's destructor): per-thread state of a pool's workers
/// (an HTTP client and its connections) goes with the worker.
///
/// Plainly `Sendable`: the key and `make` are immutable, and each thread
/// reaches only its own value (the pthread key's slot holds one retain on
/// it, given back by the destructor).
public final class PerThread<Value: AnyObject>: Sendable {
    private let key: pthread_key_t
    private let make: @Sendable () -> Value

    public init(_ make: @escaping @Sendable () -> Value) {
        self.make = make
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        }
        self.key = key
    }

    /// This thread's value.
    public var value: Value {
        if let p = pthread_getspecific(key) {
            return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as! Value
        }
        let v = make()
        pthread_setspecific(key, Unmanaged<AnyObject>.passRetained(v as AnyObject).toOpaque())
        return v
    }
}
