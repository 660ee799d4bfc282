import Foundation
import Green

/// A unit of work every model can run: a name, by which a worker process
/// finds it (as multiprocessing pickles a function by reference), and a
/// function of `Codable` values. Greenlets and threads call the function
/// directly; processes send the input, encoded, to a worker running the
/// same program, which looks the job up by name.
///
/// ```swift
/// let square = Job<Int, Int>("square") { n, _ in n * n }
/// ```
///
/// A program that uses the processes model lists its jobs in
/// `ProcessWorker.serveIfWorker(jobs:)`, first thing in `main`.
public struct Job<Input: Codable & Sendable, Output: Codable & Sendable>: Sendable {
    public let name: String
    let body: @Sendable (Input, JobContext) throws -> Output

    public init(_ name: String, _ body: @escaping @Sendable (Input, JobContext) throws -> Output) {
        self.name = name
        self.body = body
    }

    /// Runs the job here, in `context`.
    public func run(_ input: Input, in context: JobContext) throws -> Output {
        try body(input, context)
    }

    /// The job with its types erased: what a worker process serves.
    public var erased: AnyJob {
        AnyJob(name: name, run: { data, context in
            let input = try JSONDecoder().decode(Input.self, from: data)
            return try JSONEncoder().encode(try body(input, context))
        }, runSpawned: { data, context in
            // A spawned task: wait its timer's delay first.
            let timed = try JSONDecoder().decode(Model.TimedInput<Input>.self, from: data)
            if timed.delay > 0 { try context.sleep(timed.delay) }
            return try JSONEncoder().encode(try body(timed.input, context))
        })
    }
}

/// A job as a worker process serves it: encoded input to encoded output.
public struct AnyJob: Sendable {
    public let name: String
    /// A pool's request: the input alone.
    let run: @Sendable (Data, JobContext) throws -> Data
    /// A spawned task's request: `Model.TimedInput`.
    let runSpawned: @Sendable (Data, JobContext) throws -> Data
}

/// What a job may ask of the model it runs in: waiting, the way the model
/// waits (a greenlet parks and lets the others run; a thread or a process
/// blocks in the kernel).
public struct JobContext: Sendable {
    public let model: ModelKind

    public init(model: ModelKind) { self.model = model }

    /// Waits `seconds`. Inlinable, and a thread's sleep out of line: a
    /// greenlet's job that waits keeps no frame of this function in its
    /// stack (a parked compact greenlet's image) beyond its own.
    @inlinable
    public func sleep(_ seconds: Double) throws {
        if model == .greenlets {
            try Green.sleep(seconds)
        } else {
            Self.sleepThread(seconds)
        }
    }

    /// Blocks the calling thread for `seconds`.
    @usableFromInline @inline(never)
    static func sleepThread(_ seconds: Double) {
        var t = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        var left = timespec()
        while nanosleep(&t, &left) != 0 && errno == EINTR { t = left }
    }
}

/// A job that failed, in whichever model: its error, or the worker
/// process that died under it.
public struct JobError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Equatable, Sendable {
        /// The job threw; `message` is the error's description.
        case failed(message: String)
        /// The worker process running it died (`how`: "killed by signal 9",
        /// "exited with status 3").
        case workerDied(how: String)
        /// A worker process could not be started.
        case cannotStart(reason: String)
        /// The worker does not know the job (it was not listed in
        /// `serveIfWorker(jobs:)`).
        case unknownJob
        /// The model cannot do this (yet).
        case unsupported(reason: String)
    }

    public let job: String
    public let kind: Kind

    public init(job: String, kind: Kind) {
        self.job = job
        self.kind = kind
    }

    /// `error` as a pool reports a job's failure: itself if it is a
    /// `JobError`, else `.failed` with its description. Out of line: the
    /// description's buffers would take room in every worker's frame.
    @usableFromInline @inline(never)
    static func wrapping(_ error: any Error, job: String) -> any Error {
        error is JobError ? error : JobError(job: job, kind: .failed(message: "\(error)"))
    }

    public var description: String {
        switch kind {
        case .failed(let m): return "job \(job) failed: \(m)"
        case .workerDied(let how): return "job \(job): its worker process died (\(how))"
        case .cannotStart(let r): return "job \(job): cannot start a worker process: \(r)"
        case .unknownJob: return "job \(job): the worker process does not know this job (list it in serveIfWorker(jobs:))"
        case .unsupported(let r): return "job \(job): \(r)"
        }
    }
}
