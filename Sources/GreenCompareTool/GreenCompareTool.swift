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
//
// Memory per task: each model runs twice, with the tasks asked for and
// with one (its baseline: the runtime, the program, a pool of one); what
// the first run's peak holds above the second's, divided by the tasks
// alive at once beyond the one, is one more task's cost. User memory is
// the peak RSS (PSS summed over the tree for processes, whose shared
// libraries RSS would count once per worker); kernel memory is the
// growth of the kernel's stacks, page tables and unreclaimable slab from
// before the child starts to its peak (see `KernelMemory`), sampled by
// the parent every 10 ms.
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

    @Option(help: "Bytes of heap each touch-heap task allocates and writes.")
    var touchBytes = 256 << 10

    @Option(help: "How the greenlets model's greenlets keep their stacks: dedicated or compact (default: GREEN_STACK_MODE, else dedicated).")
    var stackMode: String?

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
        if let stackMode, stackMode != "dedicated" && stackMode != "compact" {
            throw ValidationError("--stack-mode is dedicated or compact, not \(stackMode)")
        }
    }

    var greenletStackMode: StackMode {
        switch stackMode {
        case "compact": return .compact
        case "dedicated": return .dedicated
        default: return .default
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
        p.touchBytes = touchBytes
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
            if progress { writeError("\r\u{1B}[Krunning \(workload) on \(m) with one task...") }
            let baseline = try measure(w, model: m, extra + ["--tasks", "1", "--concurrency", "1"], baseline: true)
            if progress { writeError("\r\u{1B}[Krunning \(workload) on \(m)...") }
            var r = try measure(w, model: m, extra)
            r.speedup = sequential.perUnitSeconds.map { $0 * Double(r.units) / r.wallSeconds }
            r.perTask(above: baseline)
            results.append(r)
        }
        if progress { writeError("\r\u{1B}[K") }
        let disagreements = TimeCheck.disagreements.load(ordering: .relaxed)
        if checkWithTime && disagreements > 0 {
            throw ValidationError("\(disagreements) model(s) disagree with /usr/bin/time -v by more than 10%")
        }
        if let svg {
            let subtitle = "\(tasks) tasks, concurrency \(concurrency)"
                + (greenletStackMode == .compact && models.contains("greenlets") ? ", compact greenlets" : "")
                + (w == .ioSleep || w == .mixed || w == .httpFetch ? ", \(latency) s latency" : "")
                + "; \(ProcessInfo.processInfo.activeProcessorCount) cores"
            do {
                try Chart.svg(workload: workload, subtitle: subtitle, results).write(toFile: svg, atomically: true, encoding: .utf8)
            } catch {
                throw ValidationError("cannot write \(svg): \(error)")
            }
        }
        if json {
            let object: [String: Any] = ["workload": workload, "results": results.map(\.json),
                                         "kernel_source": KernelMemory.primary.source,
                                         "greenlet_stack_mode": greenletStackMode == .compact ? "compact" : "dedicated"]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            printTable(w, results, sequential)
        }
    }

    // MARK: - One model, in a child process

    /// The child's side: runs the workload on one model and prints one
    /// JSON line (wall time, units, the tasks alive at once). The parent
    /// samples its memory from outside: a sampler thread here would make
    /// the greenlets model's process multi-threaded (every stack the
    /// kernel reclaims would then cost a TLB shootdown).
    private func runInThisProcess(_ w: Workload, _ name: String) throws {
        // CPU-bound work on greenlets holds the hub by design here; the
        // blocked-hub monitor's reports (and its backtrace signals) would
        // only perturb the measurement.
        HubMonitor.threshold = 0
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
            outcome = try w.run(on: Model(kind, stackMode: greenletStackMode), p)
        }
        let wall = monotonicSeconds() - started
        // The run's own peak, read before this process prints and exits:
        // its exit faults in about 3 MiB of libraries' pages, which would
        // be the peak of a small run (a baseline) and not of a large one.
        let hwm = readSmall("/proc/self/status")?.split(separator: "\n")
            .first { $0.hasPrefix("VmHWM:") }.flatMap(kibField) ?? 0
        let line: [String: Any] = ["wall_s": wall, "units": outcome.units, "figures": outcome.figures,
                                   "checksum": String(outcome.checksum), "concurrency": p.concurrency,
                                   "live_tasks": w.liveTasks(p), "run_peak_rss_bytes": hwm]
        let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// The parent's side: runs this program with --run-one and reads its
    /// line, its resource usage and the memory sampled while it ran (a
    /// `baseline` run is never checked against /usr/bin/time).
    private func measure(_ w: Workload, model: String, _ extra: [String], baseline: Bool = false) throws -> Measurement {
        var arguments = CommandLine.arguments
        arguments.removeFirst()
        arguments = arguments.filter { $0 != "--check-with-time" }
        arguments += ["--run-one", model] + extra
        var program = Model.currentExecutable()
        let timeReport = checkWithTime && !baseline ? "/tmp/green-compare-time.\(getpid()).\(model)" : nil
        if let timeReport {
            arguments = ["-v", "-o", timeReport, program] + arguments
            program = "/usr/bin/time"
        }
        defer { if let timeReport { unlink(timeReport) } }
        let kernelBefore = KernelMemory.now()
        var sampler: MemorySampler?
        let (output, status, usage) = try runChild(program, arguments) { pid in
            sampler = MemorySampler(pid: pid, wholeTree: model == "processes")
        }
        let sampled = sampler?.stop()
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
        let tree = sampled?.peakRSS ?? 0
        // One process: the kernel's exact peak; a tree: the sampled sum.
        m.peakRSSBytes = model == "processes" ? max(tree, maxRSS) : maxRSS
        m.liveTasks = object["live_tasks"] as? Int ?? 0
        // User memory: one process's exact peak RSS until its workload
        // returned (the kernel's high-water mark), or a tree's sampled
        // peak PSS.
        // A run over in fewer than 3 samples (30 ms) has no peak sample
        // worth the name: no sampled figure for it.
        let sampledPeak = (sampled?.samples ?? 0) >= 3 ? sampled?.peak : nil
        m.peakUserBytes = model == "processes" ? sampledPeak?.user
            : (object["run_peak_rss_bytes"] as? Int).flatMap { $0 > 0 ? $0 : nil } ?? maxRSS
        if let peak = sampledPeak {
            m.kernelGrowth = peak.kernel - kernelBefore
            m.peakPageTables = peak.pageTables
            m.peakThreads = peak.threads
        }
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
        print("model        wall s   user s    sys s   peak RSS MiB   vol ctx  invol ctx  units/s   speedup"
              + "   KiB/task: user  kernel")
        // Right-aligned in `width` (String(format:) ignores a width on %@).
        func column(_ text: String, _ width: Int) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
        func kib(_ v: Double?) -> String { v.map { String(format: "%.1f", $0 / 1024) } ?? "-" }
        for r in results {
            print(r.model.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: " %8.3f %8.3f %8.3f %14.1f %9d %10d %8.1f",
                         r.wallSeconds, r.userSeconds, r.systemSeconds,
                         Double(r.peakRSSBytes) / 1048576, r.voluntary, r.involuntary, r.throughput)
                  + column(r.speedup.map { String(format: "%.2fx", $0) } ?? "-", 10)
                  + column(kib(r.taskUserBytes), 17) + column(kib(r.taskKernelBytes), 8))
            if !r.figures.isEmpty {
                print("           " + r.figures.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }.joined(separator: ", "))
            }
            if r.model == "processes" && r.concurrency < concurrency {
                print("           (processes capped at \(r.concurrency) workers by --process-limit)")
            }
        }
        print("per task: above the same run with one task, divided by the tasks alive at once beyond it; user: "
              + "peak RSS (processes: PSS of the tree); kernel: \(KernelMemory.primary.source)")
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
    /// Tasks alive at once at the run's height.
    var liveTasks = 0
    /// The peak user memory: RSS of one process, PSS of a tree (nil: too
    /// short a run to sample).
    var peakUserBytes: Int?
    /// The kernel's memory at the sampled peak less before the child.
    var kernelGrowth: KernelMemory?
    /// The tree's `VmPTE` and threads at the sampled peak.
    var peakPageTables = 0
    var peakThreads = 0
    /// Per task above the baseline run (nil: no baseline, or as many
    /// tasks alive as in it).
    var taskUserBytes: Double?
    var taskKernelBytes: Double?
    /// Every kernel figure per task, by source ("meminfo_kernel_stack",
    /// "cgroup_v1_kmem", "vm_pte", "threads").
    var taskKernelParts: [String: Double] = [:]
    var baselineLiveTasks = 0

    init(model: String) { self.model = model }

    /// Sets the per-task figures: this run's peak above `baseline`'s (the
    /// same run with one task), over the tasks alive at once beyond it.
    mutating func perTask(above baseline: Measurement) {
        baselineLiveTasks = baseline.liveTasks
        let extra = Double(liveTasks - baseline.liveTasks)
        guard extra > 0 else { return }
        if let u = peakUserBytes, let b = baseline.peakUserBytes { taskUserBytes = Double(u - b) / extra }
        guard let k = kernelGrowth, let b = baseline.kernelGrowth else { return }
        taskKernelBytes = Double(k.primaryBytes - b.primaryBytes) / extra
        let d = k - b
        for (key, v) in d.values { taskKernelParts[key] = Double(v) / extra }
        taskKernelParts["vm_pte"] = Double(peakPageTables - baseline.peakPageTables) / extra
        taskKernelParts["threads"] = Double(peakThreads - baseline.peakThreads) / extra
    }

    var throughput: Double { wallSeconds > 0 ? Double(units) / wallSeconds : 0 }

    var json: [String: Any] {
        var o: [String: Any] = ["model": model, "wall_s": wallSeconds, "user_s": userSeconds, "sys_s": systemSeconds,
                                "peak_rss_bytes": peakRSSBytes, "voluntary_ctx": voluntary, "involuntary_ctx": involuntary,
                                "throughput": throughput, "speedup": speedup ?? NSNull()]
        if !figures.isEmpty { o["figures"] = figures }
        o["task_user_bytes"] = taskUserBytes.map { $0.rounded() } ?? NSNull()
        o["task_kernel_bytes"] = taskKernelBytes.map { $0.rounded() } ?? NSNull()
        o["live_tasks"] = liveTasks
        o["baseline_live_tasks"] = baselineLiveTasks
        if !taskKernelParts.isEmpty { o["task_kernel_parts"] = taskKernelParts.mapValues { $0.rounded() } }
        return o
    }
}


func describe(_ status: Int32) -> String {
    let signal = status & 0x7f
    return signal == 0 ? "exit status \((status >> 8) & 0xff)" : "killed by signal \(signal)"
}

/// Runs `path` with `arguments`, collects its stdout, and returns it with
/// the wait status and wait4's resource usage (the child and its reaped
/// descendants, as /usr/bin/time reports them); `started` gets the
/// child's pid as soon as it runs.
func runChild(_ path: String, _ arguments: [String],
              started: (pid_t) -> Void = { _ in }) throws -> (String, Int32, rusage) {
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
    started(pid)
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

/// Writes to standard error unbuffered (the progress line).
func writeError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(2, &bytes, bytes.count)
}

enum TimeCheck {
    /// Models whose figures /usr/bin/time contradicts.
    static let disagreements = Atomic<Int>(0)
}
