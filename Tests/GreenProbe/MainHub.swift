// Scenarios with the main thread's hub as Swift's main and default
// executors (`GreenExecutorFactory.runMain`): the factory can be installed
// once per process, so each runs in a child process of its own.
//
//   GreenProbe main-hub        main-actor code, unstructured tasks and
//                              greenlets take turns on the main thread;
//                              Task.sleep, DispatchQueue.main, and a task
//                              sent to Swift's pool; prints one line per
//                              check, "main-hub ok", and exits 0
//   GreenProbe main-hub-throws the main body throws: exit 1, the error on
//                              stderr
//   GreenProbe main-hub-stop   MainActor.executor.stop() from a task ends
//                              the run while a 60 s Task.sleep is pending:
//                              exit 0 at once
@_spi(ExperimentalCustomExecutors) import _Concurrency
import Dispatch
import Glibc
@_spi(ExperimentalCustomExecutors) import Green

/// The main thread, read before anything else runs.
let probeMainThread = pthread_self()

func onMainThread() -> Bool { pthread_equal(pthread_self(), probeMainThread) != 0 }

/// What ran, in order. Only ever touched on the main thread (checked).
final class TurnLog: @unchecked Sendable {
    private var entries: [String] = []

    func add(_ entry: String) {
        precondition(onMainThread(), "\(entry) ran off the main thread")
        entries.append(entry)
    }

    /// How often consecutive entries change between the two kinds.
    func alternations(_ a: String, _ b: String) -> Int {
        let kinds = entries.filter { $0.hasPrefix(a) || $0.hasPrefix(b) }.map { $0.hasPrefix(a) }
        return zip(kinds, kinds.dropFirst()).filter { $0 != $1 }.count
    }

    var text: String { entries.joined(separator: " ") }
}

/// How many threads this process has besides the main one.
func otherThreadCount() -> Int {
    guard let dir = opendir("/proc/self/task") else { return -1 }
    defer { closedir(dir) }
    var n = -1
    while let e = readdir(dir) {
        if e.pointee.d_name.0 != UInt8(ascii: ".") { n += 1 }
    }
    return n
}

func mainHubScenario(_ scenario: String) -> Never {
    _ = probeMainThread
    switch scenario {
    case "main-hub-throws":
        struct Refused: Error, CustomStringConvertible { var description: String { "refused on purpose" } }
        GreenExecutorFactory.runMain {
            writeLine(1, "about to throw")
            throw Refused()
        }
    case "main-hub-stop":
        GreenExecutorFactory.runMain {
            Task.detached {
                try await Task.sleep(for: .milliseconds(5))
                writeLine(1, "stopping")
                MainActor.executor.stop()
            }
            try await Task.sleep(for: .seconds(60))
            writeLine(1, "the long sleep ended: stop() did not")
        }
    default:
        GreenExecutorFactory.runMain { try await mainHubChecks() }
    }
}

@MainActor
func mainHubChecks() async throws {
    let log = TurnLog()
    writeLine(1, "main actor on main thread: \(onMainThread())")

    // A task on the default executor and a greenlet, each sleeping in turn.
    let task = Task.detached {
        for i in 0..<5 {
            log.add("task\(i)")
            try await Task.sleep(for: .milliseconds(4))
        }
    }
    let handle = Hub.current.handle
    let greenlet = Task.detached {
        try await handle.run {
            for i in 0..<5 {
                log.add("greenlet\(i)")
                try Green.sleep(0.004)
            }
        }
    }
    for i in 0..<5 {
        log.add("main\(i)")
        await Task.yield()
    }
    try await task.value
    try await greenlet.value
    writeLine(1, "turns: \(log.text)")
    writeLine(1, "task/greenlet alternations: \(log.alternations("task", "greenlet"))")

    // Task.sleep: a libev timer of the main hub, nothing off the thread.
    let clock = ContinuousClock()
    let start = clock.now
    try await Task.sleep(for: .milliseconds(20))
    let slept = start.duration(to: clock.now)
    let ms = Double(slept.components.seconds) * 1e3 + Double(slept.components.attoseconds) * 1e-15
    writeLine(1, "slept 20 ms: \(ms >= 20 && ms < 2_000) (\(Int(ms)) ms), on main thread: \(onMainThread())")
    writeLine(1, "other threads so far: \(otherThreadCount())")
    let detachedOnMain = await Task.detached { onMainThread() }.value
    writeLine(1, "Task.detached on main thread: \(detachedOnMain)")

    // DispatchQueue.main is drained by the hub.
    let dispatchedOnMain = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
        DispatchQueue.main.async { c.resume(returning: onMainThread()) }
    }
    writeLine(1, "DispatchQueue.main on main thread: \(dispatchedOnMain)")

    // Swift's pool is still there when asked for.
    let pooledOnMain = await Task(executorPreference: PlatformExecutorFactory.defaultExecutor) {
        onMainThread()
    }.value
    writeLine(1, "task preferring the platform executor on main thread: \(pooledOnMain)")
    writeLine(1, "main-hub ok")
}
