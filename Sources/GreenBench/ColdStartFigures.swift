// Cold starts: many greenlets that start at once and wait, on a hub whose
// stack pool has nothing warm yet, each run in a process of its own (as
// green-compare's io-sleep runs each model): the stacks' first use (guard
// installs, page faults) and their trims after are all in the figure.
import Foundation
import Glibc
import Green

enum ColdStartBench {
    /// Greenlets per run, and how long each sleeps.
    static let count = 10_000
    static let latency = 0.1

    /// Seconds from the first spawn to the last join of `count` greenlets
    /// that each sleep `latency`, on a fresh hub in a child process (this
    /// program with --cold-sleep-child); `warm` measures a second burst on
    /// the same hub instead, after a first one left the pool its stacks,
    /// and `warmStacks` sets how many it keeps warm (`Hub.warmStackLimit`;
    /// nil: the default). Also returns the seconds until the last one went
    /// to sleep.
    static func sleepSeconds(mode: StackMode, warm: Bool = false, warmStacks: Int? = nil,
                             count: Int = count) throws -> (total: Double, started: Double) {
        let me = URL(fileURLWithPath: "/proc/self/exe")
        let spec = "\(mode == .compact ? "compact" : "dedicated"),\(warm ? "warm" : "cold"),\(count)"
            + (warmStacks.map { ",\($0)" } ?? "")
        let (status, output) = try EchoBench.run(me, ["--cold-sleep-child", spec])
        let fields = String(decoding: output, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard status == 0, fields.count == 2, let total = Double(fields[0]), let started = Double(fields[1]) else {
            throw ChildFailed(status: status, output: String(decoding: output, as: UTF8.self))
        }
        return (total, started)
    }

    struct ChildFailed: Error, CustomStringConvertible {
        let status: Int32
        let output: String
        var description: String { "green-bench --cold-sleep-child exited with \(status): \(output)" }
    }

    /// The child's side: `spec` is "MODE,cold|warm,COUNT[,WARM_STACKS]";
    /// prints the two figures of `sleepSeconds`.
    static func child(_ spec: String) throws {
        let parts = spec.split(separator: ",")
        guard parts.count == 3 || parts.count == 4, let n = Int(parts[2]) else {
            throw ChildFailed(status: 2, output: "bad spec \(spec)")
        }
        if parts.count == 4, let w = Int(parts[3]) { Hub.warmStackLimit = w }
        let mode: StackMode = parts[0] == "compact" ? .compact : .dedicated
        // As green-compare's children: the blocked-hub monitor off (its
        // thread would make every trim a TLB shootdown on the other core).
        HubMonitor.threshold = 0
        _ = Hub.current
        if parts[1] == "warm" { _ = try burst(n, mode: mode) }
        let (total, started) = try burst(n, mode: mode)
        print(total, started)
    }

    /// Spawns `n` sleepers at once and joins them: seconds in all, and
    /// until the last one was asleep.
    static func burst(_ n: Int, mode: StackMode) throws -> (Double, Double) {
        var asleep = 0
        var lastAsleep: UInt64 = 0
        let t0 = monotonicNs()
        var greenlets: [Greenlet<Void>] = []
        greenlets.reserveCapacity(n)
        for _ in 0..<n {
            greenlets.append(spawn(stackMode: mode) {
                asleep += 1
                if asleep == n { lastAsleep = monotonicNs() }
                try Green.sleep(latency)
            })
        }
        for g in greenlets { try g.join() }
        let t1 = monotonicNs()
        return (Double(t1 - t0) / 1e9, Double(lastAsleep - t0) / 1e9)
    }
}
