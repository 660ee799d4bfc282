import Glibc

/// A value behind a pthread mutex, for state that other OS threads share
/// with a hub (mailboxes, cross-thread results, registries). The package's
/// one such type: its other libraries and its tests use it too (`package`
/// access, not public API).
///
/// Not `Synchronization.Mutex`: that one locks with futexes inside the
/// prebuilt standard library, where ThreadSanitizer sees no
/// synchronisation, so every access it guards would be reported as a race
/// by `make sanitize`. TSan intercepts pthread mutexes. Uncontended, the
/// two cost about the same (one atomic each way).
///
/// `@unchecked Sendable`: `state` is read and written only inside
/// `withLock`, under `mutex` (allocated in `init`, freed in `deinit`, so
/// its address never moves). For any `State`: a non-Sendable value (a
/// class reference) taken out of `withLock` is the caller's to confine.
package final class Locked<State>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    package init(_ state: State) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.state = state
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
