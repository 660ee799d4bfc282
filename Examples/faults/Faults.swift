// green-faults: fault runs too long for the unit tests, each checking that
// the process comes back to its baseline afterwards (open fds, greenlet
// stacks in use, resident memory).
//
//   green-faults spawn-kill [--cycles 1000000]
//   green-faults timed-connects [--count 100000] [--concurrency 1000]
//   green-faults http-connections [--count 10000]
//   green-faults slowloris [--slow 1000] [--seconds 6] [--header-timeout 10]
//   green-faults fd-storm [--fd-limit 512] [--storm 768] [--seconds 5]
//   green-faults resets [--count 2000]
//
// Exits non-zero, naming the figure, if something did not come back.
import ArgumentParser
import Foundation
import Glibc
import Green

@main
struct Faults: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "green-faults",
        abstract: "Fault runs that must leave fds, stacks and memory where they were.",
        subcommands: [SpawnKill.self, TimedConnects.self, HTTPConnections.self, Slowloris.self, FDStorm.self,
                      Resets.self, Client.self])
}

/// What must come back after a fault run.
struct Baseline {
    let fds: Int
    let stacksInUse: Int
    let rssBytes: Int

    /// Measured after `malloc_trim`, so that RSS counts memory in use, not
    /// free memory glibc keeps for reuse.
    static func now() -> Baseline {
        trimMalloc()
        return Baseline(fds: (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1,
                 stacksInUse: Hub.current.stackStats.inUse, rssBytes: residentBytes())
    }

    static func trimMalloc() { ProcessMemory.trimMalloc() }

    static func residentBytes() -> Int { ProcessMemory.residentBytes() }

    /// Compares with `after`: fds and stacks exactly, RSS within `slack`.
    func check(against after: Baseline, slack: Int, what: String) throws {
        print(String(format: "%@: fds %d -> %d, stacks in use %d -> %d, RSS %.1f -> %.1f MiB", what,
                     fds, after.fds, stacksInUse, after.stacksInUse,
                     Double(rssBytes) / 1_048_576, Double(after.rssBytes) / 1_048_576))
        var problems: [String] = []
        if after.fds != fds { problems.append("open fds \(fds) -> \(after.fds)") }
        if after.stacksInUse != stacksInUse { problems.append("stacks in use \(stacksInUse) -> \(after.stacksInUse)") }
        if after.rssBytes - rssBytes > slack { problems.append("RSS grew by \((after.rssBytes - rssBytes) / 1024) KiB") }
        if !problems.isEmpty { throw ValidationError("\(what) did not come back: " + problems.joined(separator: "; ")) }
    }
}

struct SpawnKill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spawn-kill", abstract: "Spawn greenlets that park, kill each, many times over.")

    @Option(help: "Spawn/kill cycles.")
    var cycles = 1_000_000

    @Option(help: "Greenlets alive at once.")
    var batch = 1_000

    func run() throws {
        // One warm-up batch, so that the baseline holds the pool's warm stacks.
        try cycle(batch)
        let before = Baseline.now()
        let started = Hub.current.nowUpdated()
        var done = 0
        while done < cycles {
            let n = min(batch, cycles - done)
            try cycle(n)
            done += n
        }
        let seconds = Hub.current.nowUpdated() - started
        print(String(format: "%d spawn/kill cycles in %.2f s (%.0f ns each)", cycles, seconds, seconds / Double(cycles) * 1e9))
        try before.check(against: Baseline.now(), slack: 8 << 20, what: "spawn-kill")
    }

    private func cycle(_ n: Int) throws {
        let parked = (0..<n).map { _ in Green.spawn { try Green.sleep(3600) } }
        try Green.sleep(0)   // all of them start and park
        try killAll(parked)
    }
}

struct TimedConnects: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timed-connects", abstract: "Connects that time out (a listener that never accepts), many times over.")

    @Option(help: "Connects, each timing out.")
    var count = 100_000

    @Option(help: "Connects at once.")
    var concurrency = 1_000

    @Option(help: "Seconds each connect may take.")
    var timeout = 0.005

    func run() throws {
        // A listener with a backlog of one that never accepts: once its
        // queue is full, the kernel drops further SYNs and connects hang.
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0), backlog: 1)
        defer { listener.close() }
        let address = listener.localAddress!
        var fillers: [Socket] = []
        defer { for f in fillers { f.close() } }
        for _ in 0..<4 {
            let s = try Socket(family: AF_INET)
            do { try s.connect(to: address, timeout: 0.2) } catch { s.close(); continue }
            fillers.append(s)
        }
        _ = try runBatch(min(concurrency, count), address)   // warm-up
        let before = Baseline.now()
        let started = Hub.current.nowUpdated()
        var timedOut = 0
        var done = 0
        while done < count {
            let n = min(concurrency, count - done)
            timedOut += try runBatch(n, address)
            done += n
        }
        let seconds = Hub.current.nowUpdated() - started
        print(String(format: "%d connects, %d timed out, in %.2f s", count, timedOut, seconds))
        guard timedOut == count else {
            throw ValidationError("only \(timedOut) of \(count) connects timed out (the listener's queue did not stay full)")
        }
        try before.check(against: Baseline.now(), slack: 8 << 20, what: "timed-connects")
    }

    /// Runs `n` connects at once; returns how many timed out.
    private func runBatch(_ n: Int, _ address: SocketAddress) throws -> Int {
        let tries = (0..<n).map { _ in
            Green.spawn { () -> Bool in
                let s = try Socket(family: AF_INET)
                defer { s.close() }
                do {
                    try s.connect(to: address, timeout: timeout)
                    return false
                } catch let e as SocketError {
                    if case .timedOut = e.reason { return true }
                    throw e
                }
            }
        }
        var timedOut = 0
        for t in tries where try t.get() { timedOut += 1 }
        return timedOut
    }
}
