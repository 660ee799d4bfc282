import Foundation
import Glibc
import Green
import GreenCompare
import GreenCompareWorkloads
import XCTest
import GreenTestSupport

/// The adapter layer's conformance suite: the same checks on greenlets,
/// threads and processes (whose workers are the green-compare program).
final class CompareTests: GreenTestCase {
    static let worker: String? = executable(named: "green-compare") ?? executable(named: "GreenCompareTool")

    /// An executable built into the same products directory as the tests.
    static func executable(named name: String) -> String? { builtExecutable(named: name) }

    func models() throws -> [Model] {
        guard let worker = (builtExecutable(named: "green-compare") ?? builtExecutable(named: "GreenCompareTool")) else { throw TestError("green-compare not found next to the test bundle") }
        return ModelKind.allCases.map { Model($0, workerExecutable: worker) }
    }

    func testSpawnAndJoinReturnOutputsAndFailures() throws {
        for model in try models() {
            let tasks = try (1...4).map { try model.spawn(ConformanceJobs.square, $0) }
            XCTAssertEqual(try tasks.map { try $0.join() }, [1, 4, 9, 16], "\(model.kind)")
            let failing = try model.spawn(ConformanceJobs.fail, "no luck")
            XCTAssertThrowsError(try failing.join(), "\(model.kind)") { error in
                XCTAssertEqual(error as? JobError, JobError(job: "conformance.fail", kind: .failed(message: "no luck")))
            }
            // Joining again gives the same outcome.
            XCTAssertThrowsError(try failing.join())
            XCTAssertEqual(try tasks[1].join(), 4)
        }
    }

    func testTheTimerStartsTheJobAfterItsDelay() throws {
        for model in try models() {
            let before = monotonicSeconds()
            let task = try model.spawn(after: 0.2, ConformanceJobs.startTime, 0)
            let started = try task.join()
            XCTAssertGreaterThanOrEqual(started - before, 0.19, "\(model.kind)")
        }
    }

    func testLockKeepsEveryIncrement() throws {
        for model in try models() {
            let lock = try model.lock()
            let counter = try model.counter()
            let input = ConformanceJobs.LockInput(lock: lock, counter: counter, increments: 2_000)
            let tasks = try (0..<4).map { _ in try model.spawn(ConformanceJobs.lockedIncrements, input) }
            for t in tasks { _ = try t.join() }
            XCTAssertEqual(counter.value, 8_000, "\(model.kind)")
        }
    }

    func testEventWakesWaitersAndTimesOut() throws {
        for model in try models() {
            let event = try model.event()
            let quiet = try model.spawn(ConformanceJobs.waitEvent, .init(event: event, timeout: 0.05))
            XCTAssertEqual(try quiet.join(), false, "\(model.kind): a wait with nothing set times out")
            let waiters = try (0..<3).map { _ in try model.spawn(ConformanceJobs.waitEvent, .init(event: event, timeout: 30)) }
            XCTAssertFalse(event.isSet)
            _ = try model.spawn(ConformanceJobs.setEvent, .init(event: event, timeout: nil)).join()
            XCTAssertEqual(try waiters.map { try $0.join() }, [true, true, true], "\(model.kind)")
            XCTAssertTrue(event.isSet)
        }
    }

    func testSemaphoreBoundsHoldersAtOnce() throws {
        for model in try models() {
            let input = ConformanceJobs.SemaphoreInput(semaphore: try model.semaphore(2), active: try model.counter(),
                                                       peak: try model.lock(), peakCounter: try model.counter(),
                                                       seconds: 0.05)
            let tasks = try (0..<6).map { _ in try model.spawn(ConformanceJobs.holdSemaphore, input) }
            for t in tasks { _ = try t.join() }
            XCTAssertEqual(input.peakCounter.value, 2, "\(model.kind): at most 2 holders, and 2 at some point")
            XCTAssertEqual(input.active.value, 0)
        }
    }

    func testQueueCarriesEveryItemAndCloseEndsConsumers() throws {
        for model in try models() {
            let queue = try model.queue(of: Int.self, capacity: 4)
            let producers = try (0..<2).map { k in
                try model.spawn(WorkloadJobs.produce, ProducerInput(queue: queue, first: k * 500, count: 500))
            }
            let consumers = try (0..<3).map { _ in try model.spawn(WorkloadJobs.consume, ConsumerInput(queue: queue)) }
            for p in producers { _ = try p.join() }
            queue.close()
            let sum = try consumers.map { try $0.join() }.reduce(0, +)
            XCTAssertEqual(sum, 999 * 1000 / 2, "\(model.kind)")
            XCTAssertThrowsError(try queue.put(1), "\(model.kind): put after close") { XCTAssertTrue($0 is ModelQueueClosed) }
            XCTAssertNil(try queue.get())
        }
    }

    func testPipeCarriesMessagesBothWaysAndCloses() throws {
        for model in try models() {
            let (a, b) = try model.pipe(of: Int.self, capacity: 2)
            let pong = try model.spawn(ConformanceJobs.pong, .init(end: b, rounds: 0))
            let ping = try model.spawn(ConformanceJobs.ping, .init(end: a, rounds: 100))
            XCTAssertEqual(try ping.join(), 2 * (1...100).reduce(0, +), "\(model.kind)")
            XCTAssertEqual(try pong.join(), 100, "\(model.kind)")
            XCTAssertNil(try a.receive(), "\(model.kind): both ends closed")
        }
    }

    func testPoolMapKeepsOrderAndReportsTheFirstFailure() throws {
        for model in try models() {
            let pool = try model.pool(size: 3)
            defer { pool.close() }
            XCTAssertEqual(try pool.map(ConformanceJobs.square, Array(0..<50)), (0..<50).map { $0 * $0 }, "\(model.kind)")
            var ordered: [Int] = []
            for r in pool.imap(ConformanceJobs.square, [3, 1, 2]) { ordered.append(try r.get()) }
            XCTAssertEqual(ordered, [9, 1, 4])
            XCTAssertEqual(try pool.apply(ConformanceJobs.square, 12), 144)
            XCTAssertThrowsError(try pool.map(ConformanceJobs.fail, ["first", "second"]), "\(model.kind)") { error in
                XCTAssertEqual((error as? JobError)?.kind, .failed(message: "first"))
            }
            // imap: a failed item is a failure in its place; the rest come.
            let mixed = Array(pool.imap(ConformanceJobs.fail, ["a", "b", "c"]))
            XCTAssertEqual(mixed.count, 3, "\(model.kind)")
            XCTAssertEqual(mixed.compactMap { try? $0.get() }, [])
            // The pool still works after a failure.
            XCTAssertEqual(try pool.apply(ConformanceJobs.square, 5), 25)
        }
    }

    func testAGreenletsMapWhoseReaderTimesOutEnds() throws {
        let pool = try Model(.greenlets).pool(size: 3)
        defer { pool.close() }
        let inputs = Array(repeating: SleepInput(seconds: 0.2), count: 3)
        XCTAssertThrowsError(try withTimeout(0.02) { try pool.map(WorkloadJobs.sleep, inputs) }) { error in
            XCTAssertTrue(error is TimeoutError, "\(error)")
        }
        // The workers finish their sleeps (the reader gave up, they did not).
        try waitUntil("the workers finished") { Hub.current.liveGreenlets == 0 }
    }

    func testACrashingWorkerProcessIsAnErrorAndIsReplaced() throws {
        let model = try models()[2]
        let pool = try model.pool(size: 1)
        defer { pool.close() }
        XCTAssertThrowsError(try pool.apply(ConformanceJobs.crash, 0)) { error in
            guard case .workerDied(let how)? = (error as? JobError)?.kind else { return XCTFail("\(error)") }
            XCTAssertTrue(how.contains("signal 9"), how)
        }
        // A new worker takes the next job.
        XCTAssertEqual(try pool.apply(ConformanceJobs.square, 7), 49)
        let task = try model.spawn(ConformanceJobs.crash, 0)
        XCTAssertThrowsError(try task.join()) { XCTAssertTrue("\($0)".contains("worker process died"), "\($0)") }
    }

    func testWorkerProcessesDoNotOutliveTheirParent() throws {
        guard let worker = (builtExecutable(named: "green-compare") ?? builtExecutable(named: "GreenCompareTool")) else { throw TestError("green-compare not found") }
        // A green-compare run whose processes are busy for 30 s, killed
        // after its workers start: none may be left behind.
        let p = try Subprocess([worker, "--workload", "io-sleep", "--tasks", "3", "--concurrency", "3",
                                "--latency", "30", "--models", "processes", "--run-one", "processes"],
                               stdin: .null, stdout: .null, stderr: .inherit)
        let runner = p.pid
        var workers: [pid_t] = []
        let deadline = monotonicSeconds() + 30
        while workers.count < 3 && monotonicSeconds() < deadline {
            workers = descendants(of: runner)
            usleep(20_000)
        }
        XCTAssertEqual(workers.count, 3, "the run's three worker processes")
        kill(runner, SIGKILL)
        _ = try p.wait(timeout: 10)
        let gone = monotonicSeconds() + 10
        var alive = workers
        while !alive.isEmpty && monotonicSeconds() < gone {
            alive = alive.filter { kill($0, 0) == 0 && !isZombie($0) }
            usleep(20_000)
        }
        XCTAssertEqual(alive, [], "workers outlived their parent")
    }

    func testThreadAndProcessPrimitivesRefuseToCrossIntoTheWrongModel() throws {
        let threads = Model(.threads)
        let lock = try threads.lock()
        XCTAssertThrowsError(try JSONEncoder().encode(ConformanceJobs.LockInput(lock: lock, counter: try threads.counter(),
                                                                                increments: 1))) { error in
            XCTAssertTrue("\(error)".contains("cannot travel to a worker process"), "\(error)")
        }
    }

    func testSHA256KnownAnswers() {
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        XCTAssertEqual(hex(SHA256.hash(Array("abc".utf8))),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex(SHA256.hash([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        XCTAssertEqual(hex(SHA256.hash(million)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testWorkloadsAgreeAcrossModels() throws {
        var p = WorkloadParameters()
        p.tasks = 4
        p.concurrency = 2
        p.bytes = 100_000
        p.limit = 5_000
        p.latency = 0.01
        for workload in [Workload.cpuHash, .cpuPrimes, .mixed, .ioSleep] {
            let outcomes = try models().map { try workload.run(on: $0, p) }
            XCTAssertEqual(Set(outcomes.map(\.checksum)).count, 1, "\(workload): \(outcomes.map(\.checksum))")
            XCTAssertEqual(outcomes.map(\.units), [4, 4, 4], "\(workload)")
        }
    }

    func testPoolWorkersLeaveNoConnectionsBehind() throws {
        func openFDs() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1 }
        let before = openFDs()
        let server = try WorkloadServer(for: .httpFetch, latency: 0)
        var p = WorkloadParameters()
        p.tasks = 60
        p.concurrency = 6
        p.serverPort = server.port
        for kind in [ModelKind.threads, .processes] {
            let outcome = try Workload.httpFetch.run(on: Model(kind, workerExecutable: (builtExecutable(named: "green-compare") ?? builtExecutable(named: "GreenCompareTool"))), p)
            XCTAssertEqual(outcome.units, 60, "\(kind)")
        }
        server.stop()
        // Each pool thread's client (and its kept-alive connections) went
        // with its thread; the server closed its side.
        let deadline = monotonicSeconds() + 5
        while openFDs() > before && monotonicSeconds() < deadline { usleep(10_000) }
        XCTAssertEqual(openFDs(), before)
    }

    func testSharedMemoryGoesWithItsPrimitives() throws {
        let model = try models()[2]
        func ours() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
                .filter { $0.hasPrefix("swift-green-compare.\(getpid()).") }
        }
        let before = ours().count
        do {
            let lock = try model.lock()
            let queue = try model.queue(of: Int.self, capacity: 4)
            let (a, _) = try model.pipe(of: Int.self)
            XCTAssertEqual(ours().count, before + 4, "a lock, a queue and a pipe's two queues")
            try queue.put(1)
            try a.send(2)
            try lock.acquire()
            try lock.release()
        }
        XCTAssertEqual(ours().count, before, "the names are unlinked when the primitives go")
    }

    private func descendants(of pid: pid_t) -> [pid_t] {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [] }
        var out: [pid_t] = []
        for t in tasks {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/children", encoding: .utf8)) ?? ""
            out += text.split(separator: " ").compactMap { pid_t($0) }
        }
        return out
    }

    private func isZombie(_ pid: pid_t) -> Bool {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return stat.contains(") Z ")
    }
}
