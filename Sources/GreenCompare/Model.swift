import Foundation
import Glibc
import Green

/// The three ways to run concurrent work that the seeds compare.
public enum ModelKind: String, CaseIterable, Sendable, Codable {
    /// Greenlets on one hub: one OS thread, cooperative switches.
    case greenlets
    /// Preemptive OS threads (pthreads) with kernel-backed locks.
    case threads
    /// Worker processes running the same program, talking over sockets.
    case processes
}

/// One concurrency model behind the API of the seeds (spawn and join,
/// Lock, Event, Semaphore, Queue, Pool with map/imap/apply, a timer):
/// workloads are written once against it and run on each model.
///
/// The greenlets model runs on the calling thread's hub: use it from one
/// thread. The threads and processes models may be used from any thread.
public final class Model: Sendable {
    public let kind: ModelKind
    /// The program worker processes run (processes model): by default this
    /// one, which must call `ProcessWorker.serveIfWorker(jobs:)` first.
    public let workerExecutable: String
    /// How the greenlets model's greenlets keep their stacks (its spawns
    /// and its pools' workers); the other models ignore it.
    public let stackMode: StackMode

    public init(_ kind: ModelKind, workerExecutable: String? = nil, stackMode: StackMode = .default) {
        self.kind = kind
        self.workerExecutable = workerExecutable ?? Model.currentExecutable()
        self.stackMode = stackMode
    }

    /// What jobs see of this model.
    public var context: JobContext { JobContext(model: kind) }

    /// The path of the running program (/proc/self/exe).
    public static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    // MARK: - Spawn and join

    /// Starts `job` on its own greenlet, thread or process.
    public func spawn<I, O>(_ job: Job<I, O>, _ input: I) throws -> ModelTask<O> {
        try spawn(after: 0, job, input)
    }

    /// Starts `job` after `seconds` (a timer): the greenlet, thread or
    /// process exists at once and waits, so `join` works from the start.
    public func spawn<I, O>(after seconds: Double, _ job: Job<I, O>, _ input: I) throws -> ModelTask<O> {
        let context = self.context
        switch kind {
        case .greenlets:
            let g = Green.spawn(after: max(0, seconds), stackMode: stackMode) { try job.run(input, in: context) }
            return ModelTask(job: job.name, backend: .greenlet(g))
        case .threads:
            let box = ResultBox<O>()
            let thread = try OSThreadHandle {
                if seconds > 0 { try? context.sleep(seconds) }
                box.finish(Result { try job.run(input, in: context) })
            }
            return ModelTask(job: job.name, backend: .thread(thread, box))
        case .processes:
            let worker: WorkerProcess
            do {
                worker = try WorkerProcess(executable: workerExecutable)
            } catch {
                throw JobError(job: job.name, kind: .cannotStart(reason: "\(error)"))
            }
            let payload = try JSONEncoder().encode(TimedInput(delay: seconds, input: input))
            try worker.send(job: Model.delayedPrefix + job.name, input: payload)
            return ModelTask(job: job.name, backend: .process(worker) { try JSONDecoder().decode(O.self, from: $0) })
        }
    }

    /// A spawned process's request: the job waits `delay` first (the timer
    /// runs in the worker, so the parent needs no thread for it).
    struct TimedInput<I: Codable & Sendable>: Codable, Sendable {
        let delay: Double
        let input: I
    }

    static let delayedPrefix = "spawn:"

    // MARK: - Primitives

    public func lock() throws -> ModelLock { try ModelLock(kind) }
    public func event() throws -> ModelEvent { try ModelEvent(kind) }
    public func semaphore(_ value: Int) throws -> ModelSemaphore { try ModelSemaphore(kind, value: value) }
    public func counter() throws -> ModelCounter { try ModelCounter(kind) }
    public func queue<T: Codable & Sendable>(of: T.Type = T.self, capacity: Int) throws -> ModelQueue<T> {
        try ModelQueue(kind, capacity: capacity)
    }

    /// A duplex pipe: what one end sends, the other receives.
    public func pipe<T: Codable & Sendable>(of: T.Type = T.self, capacity: Int = 16) throws
        -> (ModelPipeEnd<T>, ModelPipeEnd<T>) {
        let ab = try ModelQueue<T>(kind, capacity: capacity)
        let ba = try ModelQueue<T>(kind, capacity: capacity)
        return (ModelPipeEnd(outgoing: ab, incoming: ba), ModelPipeEnd(outgoing: ba, incoming: ab))
    }

    /// A pool of `size` workers (greenlets, threads or processes).
    public func pool(size: Int) throws -> ModelPool { try ModelPool(model: self, size: size) }
}

/// A spawned job; `join` waits for its output (or rethrows its failure).
/// Not `Sendable`: a greenlets model's task holds its greenlet, which
/// belongs to the spawning thread's hub; join it there.
public final class ModelTask<Output: Codable & Sendable> {
    enum Backend {
        case greenlet(Greenlet<Output>)
        case thread(OSThreadHandle, ResultBox<Output>)
        case process(WorkerProcess, (Data) throws -> Output)
    }

    public let job: String
    private let backend: Backend
    private var result: Result<Output, Error>?
    private let monitor = Monitor()

    init(job: String, backend: Backend) {
        self.job = job
        self.backend = backend
    }

    /// Waits for the job and returns its output (every call returns the
    /// same outcome).
    public func join() throws -> Output {
        if let r = monitor.locked({ result }) { return try r.get() }
        let outcome: Result<Output, Error>
        switch backend {
        case .greenlet(let g):
            outcome = Result { try g.get() }.mapError { JobError.wrapping($0, job: job) }
        case .thread(let thread, let box):
            thread.join()
            outcome = box.take().mapError { JobError.wrapping($0, job: job) }
        case .process(let worker, let decode):
            outcome = Result { try decode(try worker.receive(job: job)) }
            worker.close()
        }
        return try monitor.locked {
            if result == nil { result = outcome }
            return result!
        }.get()
    }

    deinit {
        // A process task never joined: its worker is stopped and reaped,
        // never left behind.
        guard result == nil else { return }
        switch backend {
        case .process(let worker, _):
            worker.kill()
            worker.close()
        case .thread(let thread, _):
            thread.detach()   // it finishes its job; its resources go with it
        case .greenlet:
            break
        }
    }
}

/// A thread's result, handed to whoever joins it. `@unchecked Sendable`:
/// `result` is read and written only with `monitor` held (not `Locked`:
/// `take` waits on the monitor's condition).
final class ResultBox<T>: @unchecked Sendable {
    private let monitor = Monitor()
    private var result: Result<T, Error>?

    func finish(_ r: Result<T, Error>) {
        monitor.locked {
            result = r
            monitor.broadcast()
        }
    }

    func take() -> Result<T, Error> {
        monitor.locked {
            _ = monitor.wait(until: nil) { result != nil }
            return result!
        }
    }
}
