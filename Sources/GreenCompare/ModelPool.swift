import DequeModule
import Foundation
import Glibc
import Green

/// A pool of workers: `map` (outputs in input order), `imap` (the same,
/// one at a time as they are ready), `apply` (one job). Greenlets: a
/// `Green.Pool`; threads: `size` OS threads taking jobs from one queue;
/// processes: `size` OS threads, each feeding its own worker process. A
/// job that throws fails its item with `JobError.failed`; a worker
/// process that dies fails its item with `JobError.workerDied` and is
/// replaced for the next item.
///
/// Not `Sendable`: a greenlets model's pool holds a `Green.Semaphore` of
/// the hub that made it; use a pool on the thread that made it, as a
/// `ModelTask`.
public final class ModelPool {
    public let model: Model
    public let size: Int
    /// Greenlets: the pool's slots, shared by every map on it.
    @usableFromInline let green: Green.Semaphore?
    private let workers: ThreadWorkers?

    init(model: Model, size: Int) throws {
        precondition(size >= 1, "a pool needs at least 1 worker")
        self.model = model
        self.size = size
        switch model.kind {
        case .greenlets:
            green = Green.Semaphore(value: size)
            workers = nil
        case .threads, .processes:
            green = nil
            workers = try ThreadWorkers(count: size, executable: model.kind == .processes ? model.workerExecutable : nil)
        }
    }

    deinit { close() }

    /// Every input's output, in input order; throws the first failure (in
    /// input order) once every item has finished.
    @inlinable
    public func map<I, O>(_ job: Job<I, O>, _ inputs: [I]) throws -> [O] {
        var results = imap(job, inputs)
        var outputs: [O] = []
        outputs.reserveCapacity(inputs.count)
        var failure: Error?
        while let r = results.next() {
            switch r {
            case .success(let o): outputs.append(o)
            case .failure(let e): if failure == nil { failure = e }
            }
        }
        if let failure { throw failure }
        return outputs
    }

    /// The outputs in input order, each as soon as it and those before it
    /// are ready; a failed item is a `.failure` and the others still come.
    ///
    /// Inlinable, with the greenlets' path: specialized in the caller for
    /// the job's types. Unspecialized, a worker greenlet's frames hold
    /// generic value buffers while its job waits, a parked compact
    /// greenlet keeps them in its image (io-sleep's were 1,520 bytes
    /// each, 736 specialized), and each item looks up
    /// `Result` and `Optional` metadata at run time.
    @inlinable
    public func imap<I, O>(_ job: Job<I, O>, _ inputs: [I]) -> ModelResults<O> {
        if let green { return greenImap(job, inputs, slots: green, context: model.context) }
        return workerImap(job, inputs)
    }

    /// `imap` on the pool's threads, or its worker processes.
    @usableFromInline
    func workerImap<I, O>(_ job: Job<I, O>, _ inputs: [I]) -> ModelResults<O> {
        let context = model.context
        let box = OrderedResults<O>(count: inputs.count)
        let processes = model.kind == .processes
        for (i, input) in inputs.enumerated() {
            workers!.submit { worker in
                box.set(i, Result {
                    if processes {
                        let encoded = try JSONEncoder().encode(input)
                        return try JSONDecoder().decode(O.self, from: try worker.call(job: job.name, input: encoded))
                    }
                    return try job.run(input, in: context)
                }.mapError { JobError.wrapping($0, job: job.name) })
            }
        }
        var next = 0
        return ModelResults(count: inputs.count) {
            guard next < inputs.count else { return nil }
            defer { next += 1 }
            return box.wait(next)
        }
    }

    /// Greenlets: up to `size` worker greenlets (the pool's slots, shared
    /// with other maps on it) take the inputs in turn; the reader parks
    /// until the next result in order is there. Written here rather than
    /// on `Green.Pool.imap` so that it is specialized for the job's types
    /// (a generic map in another module looks up `Result` and `Optional`
    /// metadata at run time for every item, the largest cost of 10,000
    /// short tasks; see `imap`).
    @inlinable
    func greenImap<I, O>(_ job: Job<I, O>, _ inputs: [I], slots: Green.Semaphore,
                         context: JobContext) -> ModelResults<O> {
        let count = inputs.count
        let state = GreenMapState(job, inputs, slots: slots, context: context)
        for _ in 0..<min(size, count) {
            Green.spawn(stackMode: model.stackMode) { try state.work() }
        }
        var taken = 0
        var ended = false
        return ModelResults(count: count) {
            guard taken < count, !ended else { return nil }
            while state.results[taken] == nil {
                state.waitingFor = taken
                state.ready.clear()
                do {
                    _ = try state.ready.wait()
                } catch {
                    // The reader was killed or timed out (or nothing can
                    // deliver any more): that error, then the end.
                    ended = true
                    return .failure(error)
                }
            }
            defer {
                state.results[taken] = nil
                taken += 1
            }
            return state.results[taken]!
        }
    }

    /// Runs one job on a worker and returns its output.
    public func apply<I, O>(_ job: Job<I, O>, _ input: I) throws -> O {
        try map(job, [input])[0]
    }

    /// Stops the workers (threads end, worker processes exit and are
    /// reaped) after the jobs already submitted.
    public func close() {
        workers?.close()
    }
}

/// A greenlets map's shared state: confined to one hub (not `Sendable`).
/// It holds what the workers use, so that a worker's frame, which stays
/// on its stack while its job waits, holds little more than this object.
@usableFromInline
final class GreenMapState<I: Codable & Sendable, O: Codable & Sendable> {
    @usableFromInline let job: Job<I, O>
    @usableFromInline let inputs: [I]
    @usableFromInline let slots: Green.Semaphore
    @usableFromInline let context: JobContext
    @usableFromInline var results: [Result<O, Error>?]
    @usableFromInline var next = 0
    @usableFromInline var waitingFor = -1
    @usableFromInline let ready = Green.Event()

    @inlinable
    init(_ job: Job<I, O>, _ inputs: [I], slots: Green.Semaphore, context: JobContext) {
        self.job = job
        self.inputs = inputs
        self.slots = slots
        self.context = context
        results = Array(repeating: nil, count: inputs.count)
    }

    /// A worker: takes a slot, then the next input while there is one.
    @inlinable
    func work() throws {
        try slots.acquire()
        defer { slots.release() }
        while next < inputs.count {
            let i = next
            next += 1
            do {
                results[i] = .success(try job.run(inputs[i], in: context))
            } catch {
                results[i] = .failure(JobError.wrapping(error, job: job.name))
            }
            if waitingFor == i { ready.set() }
        }
    }
}

/// Outputs of `imap`, in order.
public struct ModelResults<Output>: Sequence, IteratorProtocol {
    public let count: Int
    @usableFromInline let nextResult: () -> Result<Output, Error>?

    @inlinable
    init(count: Int, _ next: @escaping () -> Result<Output, Error>?) {
        self.count = count
        nextResult = next
    }

    @inlinable
    public mutating func next() -> Result<Output, Error>? { nextResult() }
}

/// Results by index, waited for in order. `@unchecked Sendable`:
/// `results` is read and written only with `monitor` held.
final class OrderedResults<O>: @unchecked Sendable {
    private let monitor = Monitor()
    private var results: [Result<O, Error>?]

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: Result<O, Error>) {
        monitor.locked {
            results[i] = r
            monitor.broadcast()
        }
    }

    func wait(_ i: Int) -> Result<O, Error> {
        monitor.locked {
            _ = monitor.wait(until: nil) { results[i] != nil }
            let r = results[i]!
            results[i] = nil   // handed out once; frees the output
            return r
        }
    }
}

/// A worker process as one pool thread holds it: started on first use,
/// replaced after it dies. `@unchecked Sendable`: made by
/// `ThreadWorkers.init` and handed to one thread, the only one that uses
/// `process` from then on (`executable` is immutable).
final class WorkerSlot: @unchecked Sendable {
    let executable: String?
    private var process: WorkerProcess?

    init(executable: String?) { self.executable = executable }

    func call(job: String, input: Data) throws -> Data {
        if process == nil {
            do {
                process = try WorkerProcess(executable: executable!)
            } catch {
                throw JobError(job: job, kind: .cannotStart(reason: "\(error)"))
            }
        }
        do {
            try process!.send(job: job, input: input)
            return try process!.receive(job: job)
        } catch let e as JobError {
            if case .workerDied = e.kind { process = nil }   // reaped; the next call starts a new one
            throw e
        }
    }

    func close() {
        process?.close()
        process = nil
    }
}

/// `count` OS threads taking work from one queue; each owns a
/// `WorkerSlot` (used by the processes model). `@unchecked Sendable`:
/// `work`, `closing` and `threads` are read and written with `monitor`
/// held, except `init`'s appends to `threads`, which the worker threads
/// never read (not `Locked`: they wait on the monitor's condition).
final class ThreadWorkers: @unchecked Sendable {
    private let monitor = Monitor()
    private var work = Deque<@Sendable (WorkerSlot) -> Void>()
    private var closing = false
    private var threads: [OSThreadHandle] = []

    init(count: Int, executable: String?) throws {
        for _ in 0..<count {
            let slot = WorkerSlot(executable: executable)
            do {
                threads.append(try OSThreadHandle { [self] in loop(slot) })
            } catch {
                close()
                throw error
            }
        }
    }

    func submit(_ job: @escaping @Sendable (WorkerSlot) -> Void) {
        monitor.locked {
            work.append(job)
            monitor.signal()
        }
    }

    private func loop(_ slot: WorkerSlot) {
        defer { slot.close() }
        while true {
            let job: (@Sendable (WorkerSlot) -> Void)? = monitor.locked {
                _ = monitor.wait(until: nil) { closing || !work.isEmpty }
                return work.popFirst()
            }
            guard let job else { return }
            job(slot)
        }
    }

    /// Lets the queued work finish, then stops every thread.
    func close() {
        let toJoin: [OSThreadHandle] = monitor.locked {
            closing = true
            monitor.broadcast()
            defer { threads = [] }
            return threads
        }
        for t in toJoin { t.join() }
    }
}
