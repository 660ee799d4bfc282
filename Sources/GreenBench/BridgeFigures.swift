// The crossings between greenlets and Swift Concurrency: on the hub's own
// thread (its executor) and across threads, and the physical limit of a
// cross-thread round trip on this machine: two pthreads handing a token
// through a mutex and condition variables.
import Foundation
import Glibc
import Green

enum BridgeBench {
    /// ns per `awaitAsync { i }` from a greenlet: the body runs as a task on
    /// the hub's executor, on this thread; its result readies the greenlet.
    static func awaitAsyncRoundTripNs(_ n: Int) throws -> Double {
        let start = monotonicNs()
        var sum = 0
        for i in 0..<n { sum &+= try awaitAsync { i } }
        precondition(sum == n * (n - 1) / 2)
        return Double(monotonicNs() - start) / Double(n)
    }

    /// ns per `HubHandle.run { i }` from a task on the hub's executor: the
    /// body runs in a new greenlet on this thread, spawned at once.
    static func hubRunRoundTripNs(_ n: Int) throws -> Double {
        let handle = Hub.current.handle
        return try awaitAsync {
            let start = monotonicNs()
            var sum = 0
            for i in 0..<n { sum &+= try await handle.run { i } }
            precondition(sum == n * (n - 1) / 2)
            return Double(monotonicNs() - start) / Double(n)
        }
    }

    /// ns per `HubHandle.run { i }` from a task on Swift's global
    /// executor: the job crosses to the hub's thread (ev_async) and the
    /// result back (a continuation resumed on the hub, run on the pool).
    static func crossThreadRunRoundTripNs(_ n: Int) throws -> Double {
        let handle = Hub.current.handle
        return try awaitAsync {
            await Task.detached {
                let start = monotonicNs()
                var sum = 0
                for i in 0..<n { sum &+= (try? await handle.run { i }) ?? 0 }
                precondition(sum == n * (n - 1) / 2)
                return Double(monotonicNs() - start) / Double(n)
            }.value
        }
    }

    /// ns per `Task.yield()` on the global executor (two cooperative
    /// threads here).
    static func taskYieldNs(_ n: Int) throws -> Double {
        try awaitAsync {
            await Task.detached {
                let start = monotonicNs()
                for _ in 0..<n { await Task.yield() }
                return Double(monotonicNs() - start) / Double(n)
            }.value
        }
    }

    /// ns per `Task.yield()` in a task on the hub's executor.
    static func hubExecutorYieldNs(_ n: Int) throws -> Double {
        try awaitAsync {
            let start = monotonicNs()
            for _ in 0..<n { await Task.yield() }
            return Double(monotonicNs() - start) / Double(n)
        }
    }

    /// ns per round trip of a token between two pthreads through a mutex
    /// and two condition variables: what any cross-thread crossing pays at
    /// least (two wake-ups).
    static func condvarPingPongNs(_ n: Int) -> Double {
        // `@unchecked Sendable`: the mutex and conditions are allocated
        // (a `&` of a stored property is no stable address to share), and
        // `turn` and `done` are read and written with `mutex` held.
        final class Shared: @unchecked Sendable {
            let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
            let toServer = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
            let toClient = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
            var turn = 0   // 0: the client's, 1: the server's
            var done = false

            init() {
                pthread_mutex_init(mutex, nil)
                pthread_cond_init(toServer, nil)
                pthread_cond_init(toClient, nil)
            }

            deinit {
                pthread_cond_destroy(toClient)
                pthread_cond_destroy(toServer)
                pthread_mutex_destroy(mutex)
                toClient.deallocate()
                toServer.deallocate()
                mutex.deallocate()
            }
        }
        let s = Shared()
        let server = Thread {
            pthread_mutex_lock(s.mutex)
            while true {
                while s.turn != 1 && !s.done { pthread_cond_wait(s.toServer, s.mutex) }
                if s.done { break }
                s.turn = 0
                pthread_cond_signal(s.toClient)
            }
            pthread_mutex_unlock(s.mutex)
        }
        server.start()
        let start = monotonicNs()
        pthread_mutex_lock(s.mutex)
        for _ in 0..<n {
            s.turn = 1
            pthread_cond_signal(s.toServer)
            while s.turn != 0 { pthread_cond_wait(s.toClient, s.mutex) }
        }
        let elapsed = monotonicNs() - start
        s.done = true
        pthread_cond_signal(s.toServer)
        pthread_mutex_unlock(s.mutex)
        return Double(elapsed) / Double(n)
    }
}
