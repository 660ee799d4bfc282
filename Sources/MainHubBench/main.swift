// main-hub-bench: what Swift Concurrency costs with the main thread's hub
// as its main and default executors (`GreenExecutorFactory`) against
// Swift's own executors (Dispatch: a cooperative pool, the main queue).
// The executors can be chosen once per process, so every run is a child
// process: this program starts itself with `--child green` and `--child
// platform`, alternately, and reports each figure's median over the runs.
//
//   swift run -c release main-hub-bench [--runs N] [--quick] [--json]
//
// Each figure is measured inside a task on the default executor:
//   task_yield_ns          `await Task.yield()`
//   task_spawn_await_ns    `await Task { i }.value`: a task made and awaited
//   main_actor_hop_ns      `await MainActor.run {}`: to the main actor and back
@_spi(ExperimentalCustomExecutors) import Green
import Dispatch
import Foundation
import Glibc

let figures: [(key: String, what: String)] = [
    ("task_yield_ns", "await Task.yield() in a task on the default executor"),
    ("task_spawn_await_ns", "await Task { i }.value from a task on the default executor"),
    ("main_actor_hop_ns", "await MainActor.run {} from a task on the default executor"),
]

func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// The child's measurements, one "key value" line each, then exit.
func measure(scale: Int) async -> Never {
    let yields = 200_000 / scale, spawns = 100_000 / scale, hops = 20_000 / scale
    let results = await Task.detached { () -> [Double] in
        // Warm up: the first tasks allocate what later ones reuse.
        for i in 0..<1_000 { _ = await Task { i }.value }
        var start = monotonicNs()
        for _ in 0..<yields { await Task.yield() }
        let yield = Double(monotonicNs() - start) / Double(yields)
        start = monotonicNs()
        for i in 0..<spawns { _ = await Task { i }.value }
        let spawn = Double(monotonicNs() - start) / Double(spawns)
        start = monotonicNs()
        for _ in 0..<hops { await MainActor.run {} }
        let hop = Double(monotonicNs() - start) / Double(hops)
        return [yield, spawn, hop]
    }.value
    var out = ""
    for (figure, value) in zip(figures, results) { out += "\(figure.key) \(value)\n" }
    print(out, terminator: "")
    exit(0)
}

/// Runs `--child <mode>` of this executable; its figures by key.
func runChild(_ mode: String, scale: Int) throws -> [String: Double] {
    let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    var env = ProcessInfo.processInfo.environment
    env["SWIFT_BACKTRACE"] = "enable=no"
    let child = try Subprocess([exe, "--child", mode, "--scale", String(scale)], environment: env,
                               stdin: .null, stdout: .pipe, stderr: .inherit)
    let output = try child.communicate()
    guard case .exited(0)? = child.status else {
        throw BenchError("child \(mode) failed: \(String(describing: child.status))")
    }
    var values: [String: Double] = [:]
    for line in String(decoding: output.stdout, as: UTF8.self).split(separator: "\n") {
        let parts = line.split(separator: " ")
        if parts.count == 2, let v = Double(parts[1]) { values[String(parts[0])] = v }
    }
    return values
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func complain(_ message: String) {
    FileHandle.standardError.write(Data("main-hub-bench: \(message)\n".utf8))
}

func median(_ xs: [Double]) -> Double {
    let xs = xs.sorted()
    return xs.count % 2 == 1 ? xs[xs.count / 2] : (xs[xs.count / 2 - 1] + xs[xs.count / 2]) / 2
}

let args = CommandLine.arguments
func option(_ name: String) -> String? {
    args.firstIndex(of: name).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil }
}
let quick = args.contains("--quick")
let scale = Int(option("--scale") ?? "") ?? (quick ? 10 : 1)

switch option("--child") {
case "green":
    GreenExecutorFactory.runMain { await measure(scale: scale) }
case "platform":
    let childScale = scale
    Task.detached { await measure(scale: childScale) }
    dispatchMain()
case let other?:
    complain("unknown --child \(other)")
    exit(2)
case nil:
    break
}

let runs = Int(option("--runs") ?? "") ?? (quick ? 3 : 7)
var samples: [String: [String: [Double]]] = ["green": [:], "platform": [:]]
do {
    for _ in 0..<runs {
        for mode in ["green", "platform"] {
            for (key, value) in try runChild(mode, scale: scale) { samples[mode]![key, default: []].append(value) }
        }
    }
} catch {
    complain("\(error)")
    exit(1)
}

if args.contains("--json") {
    var fields: [String] = []
    for figure in figures {
        for mode in ["green", "platform"] {
            fields.append("\"\(figure.key)_\(mode)\": \(String(format: "%.1f", median(samples[mode]![figure.key] ?? [.nan])))")
        }
    }
    print("{\(fields.joined(separator: ", "))}")
} else {
    print("medians of \(runs) runs, each in a child process (ns)")
    print("figure                 main hub   platform   what")
    for figure in figures {
        let green = median(samples["green"]![figure.key] ?? [.nan])
        let platform = median(samples["platform"]![figure.key] ?? [.nan])
        print(figure.key.padding(toLength: 22, withPad: " ", startingAt: 0)
              + String(format: " %9.0f  %9.0f   ", green, platform) + figure.what)
    }
}
