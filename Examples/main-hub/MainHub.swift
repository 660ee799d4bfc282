// main-hub: a whole program on one thread, as in gevent or Node. The main
// thread's hub is Swift's main executor and its default executor
// (`GreenExecutorFactory`): `@MainActor` code, every task and every
// greenlet take turns on the main thread, `Task.sleep` and `Green.sleep`
// are timers of the same libev loop, and main-actor state needs no lock.
//
// The factory is named by the type alias below; Swift 6.3.1 honours it on
// Linux only with `-Xfrontend -disable-availability-checking`, which
// Package.swift passes for this target (without a flag, a synchronous main
// can call `GreenExecutorFactory.runMain { ... }` instead).
//
//   swift run -c release main-hub [--workers N] [--steps N]   # exit 1 if a check fails
import ArgumentParser
import Glibc
@_spi(ExperimentalCustomExecutors) import Green

typealias DefaultExecutorFactory = GreenExecutorFactory

/// Steps counted by greenlets and tasks alike, without a lock: main-actor
/// state, on the one thread.
@MainActor
final class Tally {
    var greenletSteps = 0
    var taskSteps = 0
    var threads: Set<UInt> = []

    func step(byGreenlet: Bool) {
        if byGreenlet { greenletSteps += 1 } else { taskSteps += 1 }
        threads.insert(UInt(pthread_self()))
    }
}

@main
struct MainHubExample: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "main-hub",
        abstract: "Greenlets, tasks and main-actor code on the main thread's hub, checked.")

    @Option(help: "Greenlets, and as many tasks, each stepping --steps times.")
    var workers = 500

    @Option(help: "Steps per worker, 1 ms of sleep after each.")
    var steps = 20

    mutating func validate() throws {
        guard workers > 0, steps > 0 else { throw ValidationError("--workers and --steps must be positive") }
    }

    func run() async throws {
        try await MainHubExample.demo(workers: workers, steps: steps)
    }

    @MainActor
    static func demo(workers: Int, steps: Int) async throws {
        let tally = Tally()
        let mainThread = UInt(pthread_self())
        let clock = ContinuousClock()
        let start = clock.now
        // The greenlets: spawned and joined by one greenlet that this
        // main-actor code awaits. A greenlet on the main thread may enter
        // the main actor synchronously (it must not block inside).
        async let greenlets: Void = Hub.current.handle.run {
            let all = (0..<workers).map { _ in
                spawn {
                    for _ in 0..<steps {
                        MainActor.assumeIsolated { tally.step(byGreenlet: true) }
                        try Green.sleep(0.001)
                    }
                }
            }
            try joinAll(all, raiseError: true)
        }
        // The tasks: on the default executor, the same hub.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    for _ in 0..<steps {
                        await tally.step(byGreenlet: false)
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
            }
            try await group.waitForAll()
        }
        try await greenlets
        let elapsed = start.duration(to: clock.now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18

        let expected = workers * steps
        let oneThread = tally.threads == [mainThread]
        print("\(workers) greenlets and \(workers) tasks made \(tally.greenletSteps) + \(tally.taskSteps) steps "
              + "in \(Int((seconds * 1000).rounded())) ms, each sleeping 1 ms after every step; "
              + "threads used: \(tally.threads.count) (the main one: \(oneThread))")
        guard tally.greenletSteps == expected, tally.taskSteps == expected, oneThread else {
            print("FAILED: expected \(expected) steps of each kind, all on the main thread")
            throw ExitCode.failure
        }
    }
}
