import Foundation
import Glibc
import Green
import GreenCompare

/// The jobs behind the workloads; a worker process must know them all.
public enum WorkloadJobs {
    /// Fetches `path` and returns the body's length. Sockets are green in
    /// every model: in a greenlet the wait parks it, on a thread or in a
    /// process (one greenlet on that thread's own hub) it blocks the
    /// thread in epoll, as a blocking socket would.
    public static let fetch = Job<FetchInput, Int>("workload.fetch") { input, _ in
        let response = try HTTPClients.current.get("http://127.0.0.1:\(input.port)\(input.path)")
        guard response.status == 200 else {
            throw ConformanceJobs.Failure(message: "http://127.0.0.1:\(input.port)\(input.path): status \(response.status)")
        }
        return response.body.count
    }

    /// Round trips on a connection of its own; returns the bytes echoed.
    public static let echo = Job<EchoInput, Int>("workload.echo") { input, _ in
        let socket = try Socket.connect(host: "127.0.0.1", port: UInt16(input.port), timeout: 10)
        defer { socket.close() }
        try socket.setNoDelay()
        let message = [UInt8](repeating: 0x61, count: input.size)
        var buffer = [UInt8](repeating: 0, count: input.size)
        var echoed = 0
        for _ in 0..<input.roundTrips {
            try socket.sendAll(message, timeout: 10)
            var got = 0
            while got < input.size {
                let n = try buffer.withUnsafeMutableBytes {
                    try socket.recv(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...]), timeout: 10)
                }
                if n == 0 { throw ConformanceJobs.Failure(message: "the echo server closed the connection") }
                got += n
            }
            echoed += got
        }
        return echoed
    }

    public static let sleep = Job<SleepInput, Int>("workload.sleep") { input, context in
        try context.sleep(input.seconds)
        return 1
    }

    public static let hash = Job<HashInput, UInt64>("workload.hash") { input, _ in
        SHA256.digestPrefix(ofPatternBytes: input.bytes, seed: input.seed)
    }

    public static let primes = Job<PrimesInput, Int>("workload.primes") { input, _ in
        countPrimes(below: input.limit)
    }

    public static let mixed = Job<MixedInput, UInt64>("workload.mixed") { input, context in
        try context.sleep(input.seconds)
        return SHA256.digestPrefix(ofPatternBytes: input.bytes, seed: input.seed)
    }

    /// Allocates `bytes` of heap and writes every byte; once the first
    /// `together` tasks have theirs (the pool runs that many at once, so
    /// those are all alive), waits `hold` seconds and frees them. Returns
    /// a sum of what it wrote, read back.
    public static let touch = Job<TouchInput, UInt64>("workload.touch") { input, context in
        var sum: UInt64 = 0
        let memory = input.bytes > 0 ? malloc(input.bytes) : nil
        if input.bytes > 0 && memory == nil {
            throw ConformanceJobs.Failure(message: "malloc(\(input.bytes)) failed")
        }
        defer { free(memory) }
        if let memory {
            let bytes = memory.bindMemory(to: UInt8.self, capacity: input.bytes)
            memset(memory, 0x5a, input.bytes)
            // One byte a page read back: the writes cannot be elided.
            for i in stride(from: 0, to: input.bytes, by: 4096) { sum &+= UInt64(bytes[i]) }
        }
        input.started.add(1)
        if input.started.value >= input.together { input.allStarted.set() }
        _ = try input.allStarted.wait()
        if input.hold > 0 { try context.sleep(input.hold) }
        return sum
    }

    public static let count = Job<CounterInput, Int>("workload.count") { input, _ in
        for _ in 0..<input.increments {
            if let lock = input.lock {
                try lock.withLock { input.counter.unsafeIncrement() }
            } else {
                input.counter.unsafeIncrement()
            }
        }
        return input.increments
    }

    public static let produce = Job<ProducerInput, Int>("workload.produce") { input, _ in
        for i in input.first..<(input.first + input.count) { try input.queue.put(i) }
        return input.count
    }

    /// Sums what it receives until the queue is closed and drained.
    public static let consume = Job<ConsumerInput, Int>("workload.consume") { input, _ in
        var sum = 0
        while let i = try input.queue.get() { sum &+= i }
        return sum
    }

    /// Every job above, for `ProcessWorker.serveIfWorker(jobs:)`.
    public static let all: [AnyJob] = [sleep.erased, hash.erased, primes.erased, mixed.erased, count.erased,
                                       produce.erased, consume.erased, fetch.erased, echo.erased, touch.erased]

    static func countPrimes(below limit: Int) -> Int {
        guard limit > 2 else { return 0 }
        var count = 1   // 2
        var n = 3
        while n < limit {
            var prime = true
            var d = 3
            while d * d <= n {
                if n % d == 0 {
                    prime = false
                    break
                }
                d += 2
            }
            if prime { count += 1 }
            n += 2
        }
        return count
    }
}
