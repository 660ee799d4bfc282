import Foundation
import Glibc
import Green
import GreenCompare

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
    /// Each task allocates `touchBytes` of heap and writes every byte,
    /// keeps it until every task alive at once has done the same, then
    /// waits `latency` seconds and frees it: a known amount of memory per
    /// task, against which the per-task figures are checked.
    case touchHeap = "touch-heap"

    /// Whether the runner must start a local server for it.
    public var needsServer: Bool { self == .httpFetch || self == .echo }

    /// How many tasks (greenlets, threads or processes) run at once at the
    /// height of a run with `p`: what a per-task figure divides by.
    public func liveTasks(_ p: WorkloadParameters) -> Int {
        switch self {
        case .producerConsumer:
            return max(1, p.concurrency / 2) + max(1, p.concurrency - p.concurrency / 2)
        case .counter:
            return p.tasks
        case .ioSleep, .cpuHash, .cpuPrimes, .mixed, .httpFetch, .echo, .touchHeap:
            return min(p.tasks, p.concurrency)
        }
    }
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
    /// Bytes of heap each touch-heap task allocates and writes.
    public var touchBytes = 256 << 10
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
        case .touchHeap:
            let pool = try model.pool(size: p.concurrency)
            defer { pool.close() }
            let input = TouchInput(bytes: p.touchBytes, hold: p.latency, together: liveTasks(p),
                                   started: try model.counter(), allStarted: try model.event())
            let sums = try pool.map(WorkloadJobs.touch, Array(repeating: input, count: p.tasks))
            return WorkloadOutcome(units: p.tasks, figures: ["bytes_touched": Double(p.tasks * p.touchBytes)],
                                   checksum: sums.reduce(0, &+))
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
