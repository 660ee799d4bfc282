import DequeModule
import Glibc

/// OS threads for blocking work, like gevent's threadpool: `run` hands a
/// closure to a thread and parks only the calling greenlet; the hub keeps
/// running, and the result (or error) comes back through the hub's
/// cross-thread wake-up. At most `size` closures run at once; the rest
/// queue in order. Threads start on demand and then stay.
///
/// ```swift
/// let digest = try ThreadPool.shared.run { sha256(of: hugeFile) }
/// ```
///
/// A greenlet killed (or timed out) while waiting stops waiting at once;
/// its closure, already on a thread, runs to the end and its result is
/// dropped: a blocking call cannot be interrupted from outside. Callable
/// from any thread; the closure runs on a pool thread, never on a hub.
public final class ThreadPool: @unchecked Sendable {
    // `@unchecked Sendable`: `size` and the `mutex` and `wakeup` pointers
    // are immutable (allocated here, freed in deinit); `jobs`, `threads`
    // and `idle` are read and written only with `mutex` held. (Not
    // `Locked`: the workers wait on a condition variable under the mutex.)

    /// The most closures running at once.
    public let size: Int

    // Guarded by `mutex`; `wakeup` signals work for an idle thread.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeup = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs = Deque<@Sendable () -> Void>()
    private var threads = 0
    private var idle = 0

    /// The process-wide pool: `GREEN_THREADPOOL_SIZE` threads, 16 by
    /// default (name resolution uses it, and a small pool would make
    /// lookups queue behind each other).
    public static let shared: ThreadPool = {
        if let env = getenv("GREEN_THREADPOOL_SIZE"), let n = Int(String(cString: env)), n > 0 {
            return ThreadPool(size: n)
        }
        return ThreadPool(size: 16)
    }()

    /// A pool of at most `size` threads (at least 1), none started yet.
    /// Keep it for the life of the program: its threads hold it.
    public init(size: Int) {
        precondition(size >= 1, "ThreadPool(size:) needs at least 1 thread, got \(size)")
        self.size = size
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeup, nil)
    }

    // Threads hold the pool for their lifetime, so a pool with threads is
    // never released: pools are meant to live as long as the program.
    deinit {
        pthread_cond_destroy(wakeup)
        pthread_mutex_destroy(mutex)
        wakeup.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` on a pool thread and returns its result (or rethrows its
    /// error), parking only the calling greenlet meanwhile. Throws if the
    /// greenlet is killed or an enclosing timeout expires.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = AsyncResult<T>()
        submit {
            do {
                result.set(try body())
            } catch {
                result.fail(error)
            }
        }
        return try result.get()
    }

    /// Queues `job` for a pool thread. Never blocks; any thread.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        jobs.append(job)
        let startThread = idle == 0 && threads < size
        if startThread { threads += 1 }
        pthread_cond_signal(wakeup)
        pthread_mutex_unlock(mutex)
        if startThread { startWorker() }
    }

    /// Jobs queued and not yet taken by a thread.
    public var queued: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return jobs.count
    }

    private func startWorker() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let rc = pthread_create(&thread, &attributes, { arg in
            Unmanaged<ThreadPool>.fromOpaque(arg!).takeRetainedValue().workLoop()
        }, box)
        pthread_attr_destroy(&attributes)
        if rc != 0 {
            Unmanaged<ThreadPool>.fromOpaque(box).release()
            pthread_mutex_lock(mutex)
            threads -= 1
            let stranded = threads == 0 && !jobs.isEmpty
            pthread_mutex_unlock(mutex)
            // With no thread at all the queued jobs would wait forever: run
            // one here rather than lose it (the caller is then blocked for
            // its duration, which beats never answering).
            if stranded, let job = takeJob() { job() }
        }
    }

    private func takeJob() -> (@Sendable () -> Void)? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return jobs.popFirst()
    }

    private func workLoop() -> Never {
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty {
                idle += 1
                pthread_cond_wait(wakeup, mutex)
                idle -= 1
            }
            let job = jobs.removeFirst()
            pthread_mutex_unlock(mutex)
            job()
        }
    }
}
