import Foundation
import Glibc
import Green
import GreenHTTP

/// The standard workloads, written once against `Model`: each runs
/// `tasks` units of work with at most `concurrency` at once and returns
/// what it did (its units and any figures of its own, such as lost
/// updates).
public enum Workload: String, CaseIterable, Sendable, Codable {
    /// Each task waits `latency` seconds: pure waiting (IO-bound).
    case ioSleep = "io-sleep"
    /// Each task computes SHA-256 over `bytes` bytes: pure CPU.
    case cpuHash = "cpu-hash"
    /// Each task counts the primes below `limit` by trial division.
    case cpuPrimes = "cpu-primes"
    /// Each task waits `latency`, then hashes `bytes / 8` bytes.
    case mixed
    /// Producers put `tasks` items through a bounded queue to consumers.
    case producerConsumer = "producer-consumer"
    /// Tasks increment one shared counter, unlocked (read then write:
    /// updates can be lost) and locked (none lost).
    case counter
    /// Each task fetches a page from a local HTTP server that answers
    /// after `latency` seconds.
    case httpFetch = "http-fetch"
    /// Each task makes `roundTrips` 64-byte round trips to a local echo
    /// server on its own connection.
    case echo

    /// Whether the runner must start a local server for it.
    public var needsServer: Bool { self == .httpFetch || self == .echo }
}

/// Sizes of a workload run.
public struct WorkloadParameters: Codable, Sendable {
    public var tasks = 100
    public var concurrency = 10
    /// Seconds each io-sleep (and mixed) task waits.
    public var latency = 0.1
    /// Bytes each cpu-hash task hashes.
    public var bytes = 4 << 20
    /// Primes are counted below this.
    public var limit = 200_000
    /// Increments per counter task.
    public var increments = 100_000
    /// The queue's capacity in producer-consumer.
    public var queueCapacity = 16
    /// Round trips per echo task.
    public var roundTrips = 100
    /// The local server's port (http-fetch, echo).
    public var serverPort = 0

    public init() {}
}

/// What one run of a workload reports besides time and resources.
public struct WorkloadOutcome: Codable, Sendable {
    /// Units of work done (tasks, items): throughput is units per second.
    public var units: Int
    /// Figures of the workload's own ("lost_updates": 1234).
    public var figures: [String: Double] = [:]
    /// A checksum of the outputs, equal across models for the same input.
    public var checksum: UInt64 = 0
}

/// Inputs of the jobs the workloads run.
public struct SleepInput: Codable, Sendable {
    public let seconds: Double

    public init(seconds: Double) {
        self.seconds = seconds
    }
}
public struct HashInput: Codable, Sendable {
    public let bytes: Int
    public let seed: UInt64

    public init(bytes: Int, seed: UInt64) {
        self.bytes = bytes
        self.seed = seed
    }
}
public struct PrimesInput: Codable, Sendable {
    public let limit: Int

    public init(limit: Int) {
        self.limit = limit
    }
}
public struct MixedInput: Codable, Sendable {
    public let seconds: Double
    public let bytes: Int
    public let seed: UInt64

    public init(seconds: Double, bytes: Int, seed: UInt64) {
        self.seconds = seconds
        self.bytes = bytes
        self.seed = seed
    }
}
public struct CounterInput: Codable, Sendable {
    public let counter: ModelCounter
    public let lock: ModelLock?
    public let increments: Int

    public init(counter: ModelCounter, lock: ModelLock?, increments: Int) {
        self.counter = counter
        self.lock = lock
        self.increments = increments
    }
}
public struct ProducerInput: Codable, Sendable {
    public let queue: ModelQueue<Int>
    public let first: Int
    public let count: Int

    public init(queue: ModelQueue<Int>, first: Int, count: Int) {
        self.queue = queue
        self.first = first
        self.count = count
    }
}
public struct ConsumerInput: Codable, Sendable {
    public let queue: ModelQueue<Int>

    public init(queue: ModelQueue<Int>) {
        self.queue = queue
    }
}

public struct FetchInput: Codable, Sendable {
    public let port: Int
    public let path: String

    public init(port: Int, path: String) {
        self.port = port
        self.path = path
    }
}

public struct EchoInput: Codable, Sendable {
    public let port: Int
    public let roundTrips: Int
    public let size: Int

    public init(port: Int, roundTrips: Int, size: Int) {
        self.port = port
        self.roundTrips = roundTrips
        self.size = size
    }
}

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
                                       produce.erased, consume.erased, fetch.erased, echo.erased]

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

extension Workload {
    /// Runs the workload on `model`.
    public func run(on model: Model, _ p: WorkloadParameters) throws -> WorkloadOutcome {
        switch self {
        case .ioSleep:
            let pool = try model.pool(size: p.concurrency)
            defer { pool.close() }
            let done = try pool.map(WorkloadJobs.sleep, Array(repeating: SleepInput(seconds: p.latency), count: p.tasks))
            return WorkloadOutcome(units: done.reduce(0, +))
        case .cpuHash:
            let pool = try model.pool(size: p.concurrency)
            defer { pool.close() }
            let inputs = (0..<p.tasks).map { HashInput(bytes: p.bytes, seed: UInt64($0)) }
            let digests = try pool.map(WorkloadJobs.hash, inputs)
            return WorkloadOutcome(units: p.tasks, figures: ["bytes_hashed": Double(p.tasks * p.bytes)],
                                   checksum: digests.reduce(0, ^))
        case .cpuPrimes:
            let pool = try model.pool(size: p.concurrency)
            defer { pool.close() }
            let counts = try pool.map(WorkloadJobs.primes, Array(repeating: PrimesInput(limit: p.limit), count: p.tasks))
            return WorkloadOutcome(units: p.tasks, checksum: UInt64(counts.reduce(0, +)))
        case .mixed:
            let pool = try model.pool(size: p.concurrency)
            defer { pool.close() }
            let inputs = (0..<p.tasks).map { MixedInput(seconds: p.latency, bytes: p.bytes / 8, seed: UInt64($0)) }
            let digests = try pool.map(WorkloadJobs.mixed, inputs)
            return WorkloadOutcome(units: p.tasks, checksum: digests.reduce(0, ^))
        case .producerConsumer:
            let queue = try model.queue(of: Int.self, capacity: p.queueCapacity)
            let producers = max(1, p.concurrency / 2)
            let consumers = max(1, p.concurrency - producers)
            var producerTasks: [ModelTask<Int>] = []
            var start = 0
            for k in 0..<producers {
                let count = p.tasks / producers + (k < p.tasks % producers ? 1 : 0)
                producerTasks.append(try model.spawn(WorkloadJobs.produce, ProducerInput(queue: queue, first: start, count: count)))
                start += count
            }
            let consumerTasks = try (0..<consumers).map { _ in try model.spawn(WorkloadJobs.consume, ConsumerInput(queue: queue)) }
            var produced = 0
            for t in producerTasks { produced += try t.join() }
            queue.close()
            var sum = 0
            for t in consumerTasks { sum &+= try t.join() }
            let expected = p.tasks * (p.tasks - 1) / 2
            return WorkloadOutcome(units: produced, figures: ["items_lost": Double(expected - sum)], checksum: UInt64(sum))
        case .httpFetch:
            let pool = try model.pool(size: p.concurrency)
            defer { pool.close() }
            let inputs = (0..<p.tasks).map { FetchInput(port: p.serverPort, path: "/page/\($0)") }
            let sizes = try pool.map(WorkloadJobs.fetch, inputs)
            return WorkloadOutcome(units: p.tasks, figures: ["bytes_fetched": Double(sizes.reduce(0, +))],
                                   checksum: UInt64(sizes.reduce(0, +)))
        case .echo:
            let pool = try model.pool(size: p.concurrency)
            defer { pool.close() }
            let inputs = Array(repeating: EchoInput(port: p.serverPort, roundTrips: p.roundTrips, size: 64), count: p.tasks)
            let bytes = try pool.map(WorkloadJobs.echo, inputs)
            return WorkloadOutcome(units: p.tasks * p.roundTrips, figures: ["bytes_echoed": Double(bytes.reduce(0, +))],
                                   checksum: UInt64(bytes.reduce(0, +)))
        case .counter:
            func round(_ lock: ModelLock?) throws -> Int {
                let counter = try model.counter()
                let tasks = try (0..<p.tasks).map { _ in
                    try model.spawn(WorkloadJobs.count, CounterInput(counter: counter, lock: lock, increments: p.increments))
                }
                var total = 0
                for t in tasks { total += try t.join() }
                return total - counter.value
            }
            let lostUnlocked = try round(nil)
            let lostLocked = try round(try model.lock())
            return WorkloadOutcome(units: 2 * p.tasks * p.increments,
                                   figures: ["lost_updates_unlocked": Double(lostUnlocked),
                                             "lost_updates_locked": Double(lostLocked)])
        }
    }
}

/// Jobs that check a model against the API's contract (the conformance
/// suite runs them on every model); `green-compare` serves them too, so a
/// worker process knows them.
public enum ConformanceJobs {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public struct EventInput: Codable, Sendable {
        public let event: ModelEvent
        public let timeout: Double?

        public init(event: ModelEvent, timeout: Double?) {
            self.event = event
            self.timeout = timeout
        }
    }

    public struct LockInput: Codable, Sendable {
        public let lock: ModelLock
        public let counter: ModelCounter
        public let increments: Int

        public init(lock: ModelLock, counter: ModelCounter, increments: Int) {
            self.lock = lock
            self.counter = counter
            self.increments = increments
        }
    }

    public struct SemaphoreInput: Codable, Sendable {
        public let semaphore: ModelSemaphore
        public let active: ModelCounter
        public let peak: ModelLock
        public let peakCounter: ModelCounter
        public let seconds: Double

        public init(semaphore: ModelSemaphore, active: ModelCounter, peak: ModelLock, peakCounter: ModelCounter, seconds: Double) {
            self.semaphore = semaphore
            self.active = active
            self.peak = peak
            self.peakCounter = peakCounter
            self.seconds = seconds
        }
    }

    public static let square = Job<Int, Int>("conformance.square") { n, _ in n * n }

    public struct PipeInput: Codable, Sendable {
        public let end: ModelPipeEnd<Int>
        public let rounds: Int

        public init(end: ModelPipeEnd<Int>, rounds: Int) {
            self.end = end
            self.rounds = rounds
        }
    }

    /// Ping: sends 1, 2, ... and expects each back doubled; returns the sum
    /// of the answers, then closes its end.
    public static let ping = Job<PipeInput, Int>("conformance.ping") { input, _ in
        var sum = 0
        for i in 1...input.rounds {
            try input.end.send(i)
            guard let answer = try input.end.receive() else { throw Failure(message: "pong closed early") }
            sum += answer
        }
        input.end.close()
        return sum
    }

    /// Pong: answers each number doubled until the other end closes;
    /// returns how many it answered.
    public static let pong = Job<PipeInput, Int>("conformance.pong") { input, _ in
        var count = 0
        while let n = try input.end.receive() {
            try input.end.send(2 * n)
            count += 1
        }
        input.end.close()
        return count
    }

    public static let fail = Job<String, Int>("conformance.fail") { message, _ in throw Failure(message: message) }

    /// Kills its own process (processes) or fails (the other models, which
    /// would take the whole program down).
    public static let crash = Job<Int, Int>("conformance.crash") { _, context in
        if context.model == .processes { kill(getpid(), SIGKILL) }
        throw Failure(message: "crash only kills worker processes")
    }

    public static let setEvent = Job<EventInput, Bool>("conformance.set-event") { input, _ in
        input.event.set()
        return true
    }

    public static let waitEvent = Job<EventInput, Bool>("conformance.wait-event") { input, _ in
        try input.event.wait(timeout: input.timeout)
    }

    public static let lockedIncrements = Job<LockInput, Int>("conformance.locked-increments") { input, context in
        for i in 0..<input.increments {
            try input.lock.withLock {
                input.counter.unsafeIncrement()
                // Give the others every chance to interleave while held.
                if i % 64 == 0 { try context.sleep(0) }
            }
        }
        return input.increments
    }

    /// Holds the semaphore for `seconds`, recording how many holders there
    /// were at once.
    public static let holdSemaphore = Job<SemaphoreInput, Int>("conformance.hold-semaphore") { input, context in
        try input.semaphore.acquire()
        input.active.add(1)
        try input.peak.withLock {
            if input.active.value > input.peakCounter.value {
                input.peakCounter.add(input.active.value - input.peakCounter.value)
            }
        }
        try context.sleep(input.seconds)
        input.active.add(-1)
        input.semaphore.release()
        return 1
    }

    /// The monotonic clock when the job starts (system-wide, so comparable
    /// across processes).
    public static let startTime = Job<Int, Double>("conformance.start-time") { _, _ in monotonicSeconds() }

    public static let all: [AnyJob] = [square.erased, ping.erased, pong.erased, fail.erased, crash.erased, setEvent.erased, waitEvent.erased,
                                       lockedIncrements.erased, holdSemaphore.erased, startTime.erased]
}

/// The servers the network workloads talk to, each on an OS thread of its
/// own (its own hub), started by the runner outside the measured process.
public final class WorkloadServer: @unchecked Sendable {
    public let port: Int
    private let http: HTTPServer?
    private let echo: ServerThreads?

    /// Starts the server `workload` needs on 127.0.0.1 (any free port).
    public init(for workload: Workload, latency: Double) throws {
        let loopback = try SocketAddress(ip: "127.0.0.1", port: 0)
        switch workload {
        case .httpFetch:
            let body = Array(String(repeating: "swift-green ", count: 100).utf8)
            let server = try HTTPServer(on: loopback, workers: 1) { _ in
                if latency > 0 { try Green.sleep(latency) }
                return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: body)
            }
            http = server
            echo = nil
            port = Int(server.address.port)
        case .echo:
            let servers = try ServerThreads.start(threads: 1, on: loopback) { conn, _ in
                try conn.setNoDelay()
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = try buffer.withUnsafeMutableBytes { try conn.recv(into: $0) }
                    if n == 0 { return }
                    try buffer.withUnsafeBytes { try conn.sendAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                }
            }
            echo = servers
            http = nil
            port = Int(servers.address.port)
        default:
            throw ConformanceJobs.Failure(message: "\(workload.rawValue) needs no server")
        }
    }

    public func stop() {
        _ = try? http?.stop(timeout: 1)
        try? echo?.stop(timeout: 1)
    }
}

/// One HTTP client per thread (a client is confined to its hub's thread;
/// its greenlets share it and its kept-alive connections, which close when
/// the thread ends).
enum HTTPClients {
    private static let perThread = PerThread<HTTPClient> {
        var options = HTTPClient.Options()
        options.maxConnectionsPerHost = 10_000
        options.maxIdlePerHost = 10_000
        return HTTPClient(options: options)
    }

    static var current: HTTPClient { perThread.value }
}
