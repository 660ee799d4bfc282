import Foundation
import Glibc
import Green
import GreenCompare

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
