// What a model's tasks cost in memory, user and kernel, sampled from the
// parent while the model's child process runs (so that the child gets no
// sampler thread of its own: a greenlets run stays single-threaded).
import Foundation
import Glibc
import Green

/// The kernel's memory as this machine shows it, from every source that
/// is there:
///
/// - `/proc/meminfo`: `KernelStack`, `PageTables` and `SUnreclaim`, for
///   the whole machine (or VM): every other process's threads and page
///   tables move them too.
/// - cgroup v2 `memory.stat` (`kernel_stack`, `pagetables`,
///   `slab_unreclaimable`) of this process's cgroup, when the v2
///   hierarchy has the memory controller: only this cgroup's processes.
/// - cgroup v1 `memory.kmem.usage_in_bytes` of this process's memory
///   cgroup: the kernel memory charged to it (stacks, page tables and all
///   slab, reclaimable included), only this cgroup's processes.
///
/// The figure reported is the most specific: v2, then v1, then meminfo.
struct KernelMemory: Sendable {
    /// Bytes by name ("meminfo_kernel_stack", "cgroup_v1_kmem", ...).
    var values: [String: Int] = [:]

    /// The reported figure's source and its bytes in `values`' terms.
    static let primary: (source: String, keys: [String]) = {
        if sources.v2Stat != nil {
            return ("cgroup v2 memory.stat (kernel_stack + pagetables + slab_unreclaimable)",
                    ["cgroup_v2_kernel_stack", "cgroup_v2_pagetables", "cgroup_v2_slab_unreclaimable"])
        }
        if sources.v1Kmem != nil {
            return ("cgroup v1 memory.kmem.usage_in_bytes", ["cgroup_v1_kmem"])
        }
        return ("/proc/meminfo (KernelStack + PageTables + SUnreclaim)",
                ["meminfo_kernel_stack", "meminfo_page_tables", "meminfo_slab_unreclaimable"])
    }()

    var primaryBytes: Int { KernelMemory.primary.keys.reduce(0) { $0 + (values[$1] ?? 0) } }

    static func now() -> KernelMemory {
        var k = KernelMemory()
        if let text = readSmall("/proc/meminfo") {
            for line in text.split(separator: "\n") {
                let name: String
                if line.hasPrefix("KernelStack:") {
                    name = "meminfo_kernel_stack"
                } else if line.hasPrefix("PageTables:") {
                    name = "meminfo_page_tables"
                } else if line.hasPrefix("SUnreclaim:") {
                    name = "meminfo_slab_unreclaimable"
                } else {
                    continue
                }
                k.values[name] = kibField(line) ?? 0
            }
        }
        if let path = sources.v2Stat, let text = readSmall(path) {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 2, let v = Int(parts[1]) else { continue }
                switch parts[0] {
                case "kernel_stack", "pagetables", "slab_unreclaimable": k.values["cgroup_v2_\(parts[0])"] = v
                default: break
                }
            }
        }
        if let path = sources.v1Kmem, let text = readSmall(path),
           let v = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            k.values["cgroup_v1_kmem"] = v
        }
        return k
    }

    static func - (a: KernelMemory, b: KernelMemory) -> KernelMemory {
        var d = KernelMemory()
        for (key, v) in a.values { d.values[key] = v - (b.values[key] ?? 0) }
        return d
    }

    /// The cgroup files this process can read, found once.
    static let sources: (v2Stat: String?, v1Kmem: String?) = {
        let cgroups = (readSmall("/proc/self/cgroup") ?? "").split(separator: "\n").map {
            $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        }
        // Mount points: field 5 of mountinfo, the file system type after " - ".
        var v2Mount: String?
        var v1MemoryMount: String?
        for line in (readSmall("/proc/self/mountinfo") ?? "").split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, let type = right.first else { continue }
            if type == "cgroup2" && v2Mount == nil { v2Mount = String(left[4]) }
            if type == "cgroup", right.count >= 3, right[2].split(separator: ",").contains("memory") {
                v1MemoryMount = String(left[4])
            }
        }
        var v2: String?
        if let mount = v2Mount, let entry = cgroups.first(where: { $0.count == 3 && $0[0] == "0" && $0[1].isEmpty }) {
            let path = mount + entry[2] + (entry[2].hasSuffix("/") ? "" : "/") + "memory.stat"
            if let text = readSmall(path), text.contains("kernel_stack ") { v2 = path }
        }
        var v1: String?
        if let mount = v1MemoryMount,
           let entry = cgroups.first(where: { $0.count == 3 && $0[1].split(separator: ",").contains("memory") }) {
            let path = mount + entry[2] + (entry[2].hasSuffix("/") ? "" : "/") + "memory.kmem.usage_in_bytes"
            if let text = readSmall(path), Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 0 { v1 = path }
        }
        return (v2, v1)
    }()
}

/// One look at a run's process tree and the kernel.
struct MemorySample: Sendable {
    /// The tree's user memory: RSS, or PSS for a tree of processes.
    var user = 0
    /// The tree's RSS (the processes model's peak RSS figure).
    var rss = 0
    /// The tree's page tables (`VmPTE`) and threads: the exact, per-process
    /// parts of the kernel's figure, to check it by.
    var pageTables = 0
    var threads = 0
    var kernel = KernelMemory()

    var total: Int { user + kernel.primaryBytes }
}

/// Samples a child's process tree and the kernel's memory every 10 ms from
/// the parent. The peak is the sample where user and kernel memory
/// together are highest: when every task is alive. (User memory alone
/// can stay at its height while threads end: glibc keeps the stacks of
/// ended threads mapped, touched, in its cache; their kernel stacks go.)
/// Not `Sendable`: its thread shares only `state`.
final class MemorySampler {
    private let state: Locked<(peak: MemorySample?, peakRSS: Int, samples: Int, running: Bool)>
    private let thread: Thread

    /// `wholeTree`: a tree of worker processes, started by any thread of
    /// the child, summing PSS; otherwise the child and the children of its
    /// main thread (`/usr/bin/time`'s child), summing RSS. Only the child's
    /// threads are listed, and only then: each procfs entry looked at is
    /// kernel memory (inodes, dentries) charged to this cgroup, which a
    /// 10,000-thread process would turn into a figure of its own.
    init(pid: pid_t, wholeTree: Bool) {
        let state = Locked<(peak: MemorySample?, peakRSS: Int, samples: Int, running: Bool)>((nil, 0, 0, true))
        self.state = state
        thread = Thread {
            while true {
                let s = MemorySampler.sample(pid, wholeTree: wholeTree)
                let running = state.withLock { st -> Bool in
                    if s.total > (st.peak?.total ?? .min) { st.peak = s }
                    st.peakRSS = max(st.peakRSS, s.rss)
                    st.samples += 1
                    return st.running
                }
                if !running { break }
                usleep(10_000)
            }
        }
        thread.start()
    }

    /// Stops sampling; the peak sample, the largest tree RSS seen and how
    /// many samples there were.
    func stop() -> (peak: MemorySample?, peakRSS: Int, samples: Int) {
        state.withLock { st in
            st.running = false
            return (st.peak, st.peakRSS, st.samples)
        }
    }

    static func sample(_ root: pid_t, wholeTree: Bool) -> MemorySample {
        var s = MemorySample()
        var pids = [root]
        var i = 0
        while i < pids.count {
            pids += children(pids[i], everyThread: wholeTree && i == 0)
            i += 1
        }
        for pid in pids {
            guard let status = readSmall("/proc/\(pid)/status") else { continue }
            for line in status.split(separator: "\n") {
                if line.hasPrefix("VmRSS:") {
                    s.rss += kibField(line) ?? 0
                } else if line.hasPrefix("VmPTE:") {
                    s.pageTables += kibField(line) ?? 0
                } else if line.hasPrefix("Threads:") {
                    s.threads += Int(fields(line).dropFirst().first ?? "") ?? 0
                }
            }
            if wholeTree, let rollup = readSmall("/proc/\(pid)/smaps_rollup"),
               let line = rollup.split(separator: "\n").first(where: { $0.hasPrefix("Pss:") }) {
                s.user += kibField(line) ?? 0
            }
        }
        if !wholeTree { s.user = s.rss }
        s.kernel = KernelMemory.now()
        return s
    }

    private static func children(_ pid: pid_t, everyThread: Bool) -> [pid_t] {
        let threads = everyThread
            ? ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [])
            : [String(pid)]
        var out: [pid_t] = []
        for t in threads {
            guard let text = readSmall("/proc/\(pid)/task/\(t)/children") else { continue }
            out += text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return out
    }
}

/// A line's fields, split at spaces and tabs.
func fields(_ line: Substring) -> [Substring] {
    line.split(whereSeparator: { $0 == " " || $0 == "\t" })
}

/// "Name:\t   1234 kB" in bytes.
func kibField(_ line: Substring) -> Int? {
    let f = fields(line)
    guard f.count >= 2, let kb = Int(f[1]) else { return nil }
    return kb * 1024
}

/// A small file (procfs, cgroupfs) read whole with read(2): Foundation's
/// String(contentsOfFile:) stats it first, and these report size 0.
func readSmall(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 8192)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out.append(contentsOf: buffer[..<n])
    }
    return String(decoding: out, as: UTF8.self)
}
