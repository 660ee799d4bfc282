// green-compare: the same workload on greenlets, threads and processes,
// measured side by side.
//
//   green-compare --workload cpu-hash --tasks 8 --concurrency 2
//   green-compare --workload io-sleep --tasks 10000 --concurrency 10000 --json
//
// Each model runs in a child process of its own (so that peak RSS and
// CPU time are that model's alone), taken from wait4's resource usage,
// as /usr/bin/time reports it; the processes model's peak RSS is the
// whole tree's, sampled every 10 ms.
import ArgumentParser
import Foundation
import Glibc
import Green
import GreenCompare
import GreenCompareWorkloads
import Synchronization

@main
enum Entry {
    static func main() {
        // A worker process of the processes model never gets further.
        ProcessWorker.serveIfWorker(jobs: WorkloadJobs.all + ConformanceJobs.all)
        GreenCompareCommand.main()
    }
}

struct GreenCompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "green-compare",
        abstract: "Run one workload on greenlets, threads and processes and measure each.")

    @Option(help: "One of: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")).")
    var workload: String = "cpu-hash"

    @Option(help: "Units of work.")
    var tasks = 8

    @Option(help: "Workers at once (greenlets, threads or processes).")
    var concurrency = 2

    @Option(help: "Models to run, comma-separated.")
    var models = "greenlets,threads,processes"

    @Option(help: "Most worker processes (the processes model's concurrency is capped here).")
    var processLimit = 64

    @Option(help: "Seconds each io-sleep or mixed task waits.")
    var latency = 0.1

    @Option(help: "Bytes each cpu-hash task hashes.")
    var bytes = 4 << 20

    @Option(help: "cpu-primes counts primes below this.")
    var limit = 200_000

    @Option(help: "Increments per counter task.")
    var increments = 100_000

    @Option(help: "Round trips per echo task.")
    var roundTrips = 100

    @Option(help: .hidden)
    var serverPort = 0

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Also write the figures as an SVG bar chart to this file.")
    var svg: String?

    @Flag(help: "Run each model under /usr/bin/time -v as well and print how its figures compare with ours.")
    var checkWithTime = false

    @Option(help: .hidden)
    var runOne: String?

    func validate() throws {
        guard Workload(rawValue: workload) != nil else {
            throw ValidationError("unknown workload \(workload); one of \(Workload.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard tasks >= 1, concurrency >= 1, processLimit >= 1 else {
            throw ValidationError("--tasks, --concurrency and --process-limit must be at least 1")
        }
        for m in models.split(separator: ",") where ModelKind(rawValue: String(m)) == nil {
            throw ValidationError("unknown model \(m); one of greenlets, threads, processes")
        }
    }

    var parameters: WorkloadParameters {
        var p = WorkloadParameters()
        p.tasks = tasks
        p.concurrency = concurrency
        p.latency = latency
        p.bytes = bytes
        p.limit = limit
        p.increments = increments
        p.roundTrips = roundTrips
        p.serverPort = serverPort
        return p
    }

    func run() throws {
        let w = Workload(rawValue: workload)!
        if let runOne {
            try runInThisProcess(w, runOne)
            return
        }
        var results: [Measurement] = []
        // The network workloads' server runs here, in the parent, on a
        // thread of its own: outside every measured child.
        var extra: [String] = []
        let server = w.needsServer ? try WorkloadServer(for: w, latency: latency) : nil
        defer { server?.stop() }
        if let server { extra = ["--server-port", String(server.port)] }
        let sequential = try measure(w, model: "sequential", extra)
        let progress = isatty(2) != 0
        for m in models.split(separator: ",").map(String.init) {
            if progress { writeError("\r\u{1B}[Krunning \(workload) on \(m)...") }
            var r = try measure(w, model: m, extra)
            r.speedup = sequential.perUnitSeconds.map { $0 * Double(r.units) / r.wallSeconds }
            results.append(r)
        }
        if progress { writeError("\r\u{1B}[K") }
        let disagreements = TimeCheck.disagreements.load(ordering: .relaxed)
        if checkWithTime && disagreements > 0 {
            throw ValidationError("\(disagreements) model(s) disagree with /usr/bin/time -v by more than 10%")
        }
        if let svg {
            let subtitle = "\(tasks) tasks, concurrency \(concurrency)"
                + (w == .ioSleep || w == .mixed || w == .httpFetch ? ", \(latency) s latency" : "")
                + "; \(ProcessInfo.processInfo.activeProcessorCount) cores"
            do {
                try Chart.svg(workload: workload, subtitle: subtitle, results).write(toFile: svg, atomically: true, encoding: .utf8)
            } catch {
                throw ValidationError("cannot write \(svg): \(error)")
            }
        }
        if json {
            let object: [String: Any] = ["workload": workload, "results": results.map(\.json)]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            printTable(w, results, sequential)
        }
    }

    // MARK: - One model, in a child process

    /// The child's side: runs the workload on one model and prints one
    /// JSON line (wall time, units, the tree's sampled peak RSS).
    private func runInThisProcess(_ w: Workload, _ name: String) throws {
        // CPU-bound work on greenlets holds the hub by design here; the
        // blocked-hub monitor's reports (and its backtrace signals) would
        // only perturb the measurement.
        HubMonitor.threshold = 0
        // Only a tree of processes needs sampling; a single process's peak
        // is the kernel's exact figure, and a sampler thread would make
        // the greenlets model's process multi-threaded (every stack the
        // kernel reclaims would then cost a TLB shootdown).
        let sampler = name == "processes" ? TreeRSSSampler() : nil
        let started = monotonicSeconds()
        var p = parameters
        let outcome: WorkloadOutcome
        if name == "sequential" {
            // One worker doing a few units in turn: the per-unit time that
            // the speedups divide by.
            p.tasks = min(tasks, w == .producerConsumer || w == .counter ? tasks : 5)
            p.concurrency = 1
            outcome = try w.run(on: Model(.threads), p)
        } else {
            let kind = ModelKind(rawValue: name)!
            if kind == .processes { p.concurrency = min(p.concurrency, processLimit) }
            outcome = try w.run(on: Model(kind), p)
        }
        let wall = monotonicSeconds() - started
        let peak = sampler?.stop() ?? 0
        let line: [String: Any] = ["wall_s": wall, "units": outcome.units, "figures": outcome.figures,
                                   "checksum": String(outcome.checksum), "tree_peak_rss_bytes": peak,
                                   "concurrency": p.concurrency]
        let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// The parent's side: runs this program with --run-one and reads its
    /// line and its resource usage.
    private func measure(_ w: Workload, model: String, _ extra: [String]) throws -> Measurement {
        var arguments = CommandLine.arguments
        arguments.removeFirst()
        arguments = arguments.filter { $0 != "--check-with-time" }
        arguments += ["--run-one", model] + extra
        var program = Model.currentExecutable()
        let timeReport = checkWithTime ? "/tmp/green-compare-time.\(getpid()).\(model)" : nil
        if let timeReport {
            arguments = ["-v", "-o", timeReport, program] + arguments
            program = "/usr/bin/time"
        }
        defer { if let timeReport { unlink(timeReport) } }
        let (output, status, usage) = try runChild(program, arguments)
        guard status == 0, let line = output.split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ValidationError("the \(model) run failed (\(describe(status))): \(output.suffix(2000))")
        }
        var m = Measurement(model: model)
        m.wallSeconds = object["wall_s"] as? Double ?? 0
        m.units = object["units"] as? Int ?? 0
        m.figures = object["figures"] as? [String: Double] ?? [:]
        m.checksum = object["checksum"] as? String ?? ""
        m.concurrency = object["concurrency"] as? Int ?? concurrency
        m.userSeconds = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        m.systemSeconds = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        m.voluntary = usage.ru_nvcsw
        m.involuntary = usage.ru_nivcsw
        let maxRSS = usage.ru_maxrss * 1024
        let tree = object["tree_peak_rss_bytes"] as? Int ?? 0
        // One process: the kernel's exact peak; a tree: the sampled sum.
        m.peakRSSBytes = model == "processes" ? max(tree, maxRSS) : maxRSS
        if m.units > 0 { m.perUnitSeconds = m.wallSeconds / Double(m.units) }
        if let timeReport, model != "sequential" {
            let report = (try? String(contentsOfFile: timeReport, encoding: .utf8)) ?? ""
            func field(_ name: String) -> Double? {
                report.split(separator: "\n").first { $0.contains(name) }
                    .flatMap { Double($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
            }
            let rss = (field("Maximum resident set size") ?? 0) * 1024
            let vol = field("Voluntary context switches") ?? 0
            let invol = field("Involuntary context switches") ?? 0
            // /usr/bin/time reports the largest single process: compare
            // that with the kernel's figure we read, not the tree's sum.
            func pct(_ ours: Double, _ theirs: Double) -> String {
                theirs > 0 ? String(format: "%+.1f%%", 100 * (ours - theirs) / theirs) : "n/a"
            }
            // Within 10%; counts under 50 may differ by /usr/bin/time's
            // own few switches.
            func agrees(_ ours: Double, _ theirs: Double) -> Bool {
                abs(ours - theirs) <= max(0.1 * theirs, theirs < 50 ? 5 : 0)
            }
            if !agrees(Double(maxRSS), rss) || !agrees(Double(m.voluntary), vol) || !agrees(Double(m.involuntary), invol) {
                TimeCheck.disagreements.add(1, ordering: .relaxed)
            }
            writeError("/usr/bin/time -v vs green-compare, \(model): max RSS \(Int(rss / 1024)) KiB vs \(maxRSS / 1024) KiB (\(pct(Double(maxRSS), rss))), "
                       + "voluntary \(Int(vol)) vs \(m.voluntary) (\(pct(Double(m.voluntary), vol))), "
                       + "involuntary \(Int(invol)) vs \(m.involuntary) (\(pct(Double(m.involuntary), invol)))\n")
        }
        return m
    }

    private func printTable(_ w: Workload, _ results: [Measurement], _ sequential: Measurement) {
        print("workload \(workload): \(tasks) tasks, concurrency \(concurrency)"
              + (sequential.perUnitSeconds.map { String(format: ", one sequential worker %.4f s per unit", $0) } ?? ""))
        print("model        wall s   user s    sys s   peak RSS MiB   vol ctx  invol ctx  units/s   speedup")
        for r in results {
            print(r.model.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: " %8.3f %8.3f %8.3f %14.1f %9d %10d %8.1f %9@",
                         r.wallSeconds, r.userSeconds, r.systemSeconds,
                         Double(r.peakRSSBytes) / 1048576, r.voluntary, r.involuntary, r.throughput,
                         (r.speedup.map { String(format: "%.2fx", $0) } ?? "-") as NSString))
            if !r.figures.isEmpty {
                print("           " + r.figures.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }.joined(separator: ", "))
            }
            if r.model == "processes" && r.concurrency < concurrency {
                print("           (processes capped at \(r.concurrency) workers by --process-limit)")
            }
        }
    }
}

struct Measurement {
    let model: String
    var wallSeconds = 0.0
    var userSeconds = 0.0
    var systemSeconds = 0.0
    var peakRSSBytes = 0
    var voluntary = 0
    var involuntary = 0
    var units = 0
    var concurrency = 0
    var figures: [String: Double] = [:]
    var checksum = ""
    var perUnitSeconds: Double?
    var speedup: Double?

    init(model: String) { self.model = model }

    var throughput: Double { wallSeconds > 0 ? Double(units) / wallSeconds : 0 }

    var json: [String: Any] {
        var o: [String: Any] = ["model": model, "wall_s": wallSeconds, "user_s": userSeconds, "sys_s": systemSeconds,
                                "peak_rss_bytes": peakRSSBytes, "voluntary_ctx": voluntary, "involuntary_ctx": involuntary,
                                "throughput": throughput, "speedup": speedup ?? NSNull()]
        if !figures.isEmpty { o["figures"] = figures }
        return o
    }
}


func describe(_ status: Int32) -> String {
    let signal = status & 0x7f
    return signal == 0 ? "exit status \((status >> 8) & 0xff)" : "killed by signal \(signal)"
}

/// Runs `path` with `arguments`, collects its stdout, and returns it with
/// the wait status and wait4's resource usage (the child and its reaped
/// descendants, as /usr/bin/time reports them).
func runChild(_ path: String, _ arguments: [String]) throws -> (String, Int32, rusage) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw ValidationError("pipe: \(String(cString: strerror(errno)))") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
    close(fds[1])
    guard rc == 0 else {
        close(fds[0])
        throw ValidationError("posix_spawn \(path): \(String(cString: strerror(rc)))")
    }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fds[0], &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        output.append(contentsOf: buffer[..<n])
    }
    close(fds[0])
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    return (String(decoding: output, as: UTF8.self), status, usage)
}

/// Samples the resident memory of this process and all its descendants
/// every 10 ms; `stop` returns the largest sum seen. Not `Sendable`: its
/// thread shares only `state`.
final class TreeRSSSampler {
    private let state = Locked((peak: 0, running: true))
    private let thread: Thread

    init() {
        let state = self.state
        thread = Thread {
            while state.withLock({ $0.running }) {
                let now = TreeRSSSampler.treeRSS(getpid())
                state.withLock { $0.peak = max($0.peak, now) }
                usleep(10_000)
            }
        }
        thread.start()
    }

    func stop() -> Int {
        let now = TreeRSSSampler.treeRSS(getpid())
        return state.withLock { s in
            s.running = false
            return max(s.peak, now)
        }
    }

    static func treeRSS(_ pid: pid_t) -> Int {
        var total = rss(pid)
        for child in children(pid) { total += treeRSS(child) }
        return total
    }

    private static func rss(_ pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kb * 1024
    }

    private static func children(_ pid: pid_t) -> [pid_t] {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [] }
        var out: [pid_t] = []
        for t in tasks {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/children", encoding: .utf8) else { continue }
            out += text.split(separator: " ").compactMap { pid_t($0) }
        }
        return out
    }
}

/// Writes to standard error unbuffered (the progress line).
func writeError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(2, &bytes, bytes.count)
}

enum TimeCheck {
    /// Models whose figures /usr/bin/time contradicts.
    static let disagreements = Atomic<Int>(0)
}
