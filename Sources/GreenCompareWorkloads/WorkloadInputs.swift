import Foundation
import GreenCompare

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

public struct TouchInput: Codable, Sendable {
    /// Bytes of heap to allocate and write.
    public let bytes: Int
    /// Seconds to keep them once every task alive at once has its own.
    public let hold: Double
    /// How many tasks run at once (the first `together` wait for each other).
    public let together: Int
    public let started: ModelCounter
    public let allStarted: ModelEvent

    public init(bytes: Int, hold: Double, together: Int, started: ModelCounter, allStarted: ModelEvent) {
        self.bytes = bytes
        self.hold = hold
        self.together = together
        self.started = started
        self.allStarted = allStarted
    }
}
