// green-bench: the runtime's figures, measured in one process.
//
// Each figure is the median of several runs made inside this process, so
// that a noisy neighbour on the machine moves one run, not the figure. The
// bare C switch (`c_switch_ns`) is measured in the same process as the
// baseline the runtime's own figures are compared against.
import ArgumentParser
import Foundation
import CGreenContext
import Glibc
import Green

@main
struct GreenBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "green-bench",
        abstract: "Measure swift-green's context switch, yield, spawn, memory, sync, queue and pool figures.")

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Flag(help: "A shortened run for smoke tests (figures are rough).")
    var quick = false

    @Option(help: "Runs per figure; the median is reported.")
    var runs: Int?

    @Option(help: "How many greenlets to park for max_parked_greenlets.")
    var maxParked: Int?

    @Option(help: "Measure only the figures whose key contains this text, or one of these comma-separated texts (for profiling, or a peer script's keys); a text that starts with = names one key exactly (for instruction counts: --only =yield_ns).")
    var only: String?

    @Option(help: "A folder of HTML pages for the link-extraction figures (default: Debian's python3-doc).")
    var corpus: String?

    @Option(help: .hidden)
    var coldSleepChild: String?

    mutating func run() throws {
        if let spec = coldSleepChild { return try ColdStartBench.child(spec) }
        let runs = self.runs ?? (quick ? 3 : 7)
        let scale = quick ? 10 : 1
        var figures: [(String, Double, String)] = []
        let only = self.only
        func wanted(_ key: String) -> Bool {
            guard let only else { return true }
            return only.split(separator: ",", omittingEmptySubsequences: false).contains {
                $0.first == "=" ? $0.dropFirst() == key : key.contains($0)
            }
        }
        func record(_ key: String, _ value: @autoclosure () throws -> Double, _ what: String) rethrows {
            guard wanted(key) else { return }
            let value = try value()
            figures.append((key, value, what))

        }

        let switches = 2_000_000 / scale
        record("c_switch_ns", median(runs) { cSwitchNs(switches) },
               "bare C ping-pong through the assembly switch")
        record("switch_ns", median(runs) { runtimeSwitchNs(switches, kind: GREEN_CONTEXT_ASM) },
               "green_context_switch (access-set swap included)")
        record("ucontext_switch_ns", median(runs) { runtimeSwitchNs(switches / 10, kind: GREEN_CONTEXT_UCONTEXT) },
               "the same through makecontext/swapcontext")
        try record("yield_ns", try median(runs) { try yieldNs(1_000_000 / scale) },
               "two greenlets alternating Green.sleep(0), per yield")
        record("compact_switch_ns", median(runs) { compactSwitchNs(switches / 4) },
               "switch between two compact contexts on one run stack (each copies the other's image out, its own in)")
        if wanted("compact_yield_ns") {
            var depth = 0.0
            try record("yield_deep_ns", try median(runs) { try yieldNs(1_000_000 / scale, stackMode: .dedicated, pad: true).ns },
                   "yield_ns from deeper in the stack (the frames compact_yield_ns copies), dedicated stacks")
            try record("compact_yield_ns", try median(runs) {
                let r = try yieldNs(1_000_000 / scale, stackMode: .compact, pad: true)
                depth = r.imageBytes
                return r.ns
            }, "the same two greenlets in compact mode (each yield copies one image out, the other in)")
            figures[figures.count - 1].2 += String(format: "; images of %.0f bytes", depth)
        }
        try record("spawn_join_ns", try median(runs) { try spawnJoinNs(100_000 / scale) },
               "spawn a greenlet that returns at once, join it")
        try record("parked_bytes_per_greenlet", try median(quick ? 1 : 3) { try parkedBytes(100_000 / scale).perGreenlet },
               "RSS growth per greenlet, 100,000 parked on an Event")
        try record("compact_parked_bytes_per_greenlet",
                   try median(quick ? 1 : 3) { try parkedBytes(1_000_000 / scale, stackMode: .compact).perGreenlet },
                   "RSS growth per greenlet, 1,000,000 compact greenlets parked on an Event")
        for (key, mode, warm, warmStacks) in [("cold_sleep_10k_s", StackMode.dedicated, false, Int?.none),
                                              ("cold_sleep_10k_compact_s", .compact, false, nil),
                                              ("warm_sleep_10k_s", .dedicated, true, nil),
                                              ("warm_pool_sleep_10k_s", .dedicated, true, 10_000)] where wanted(key) {
            var started: [Double] = []
            try record(key, try median(runs) {
                let r = try ColdStartBench.sleepSeconds(mode: mode, warm: warm, warmStacks: warmStacks)
                started.append(r.started)
                return r.total
            }, warmStacks != nil ? "the same with Hub.warmStackLimit = 10,000 (the pool keeps every stack of the first burst warm)"
                : warm ? "the same, a second burst on the hub (its pool keeps 1,024 of the first one's stacks warm)"
                : "10,000 \(mode == .compact ? "compact " : "")greenlets spawned at once on a fresh hub (a child process), each sleeping 100 ms: first spawn to last join")
            figures[figures.count - 1].2 += String(format: "; the last started after %.1f ms", middle(started) * 1000)
        }
        for (mode, suffix) in [(StackMode.dedicated, ""), (StackMode.compact, "_compact")] where wanted("dump_grouped\(suffix)_ms") {
            var cold: [Double] = [], lines = 0
            let warm = try median(quick ? 1 : 3) {
                let f = try dumpFigures(10_000 / scale, stackMode: mode)
                cold.append(f.coldMs)
                lines = f.lines
                return f.warmMs
            }
            record("dump_grouped\(suffix)_ms", warm,
                   "GreenletDump.text() of \(10_000 / scale) greenlets parked in 5 kinds of wait\(suffix.isEmpty ? "" : ", compact"): \(lines) lines; the first dump of a run (symbols read) \(String(format: "%.0f", middle(cold))) ms")
        }
        let rounds = 500_000 / scale
        try record("event_wakeup_ns", try median(runs) { try eventWakeupNs(rounds) },
               "Event.set in one greenlet -> the waiter in another runs, per wake-up")
        try record("queue_pingpong_ns", try median(runs) { try pingPongNs(rounds) { Queue<Int>() } },
               "two greenlets, two Queues, per message")
        try record("channel_pingpong_ns", try median(runs) { try pingPongNs(rounds) { Channel<Int>() } },
               "two greenlets, two Channels (rendezvous), per message")
        try record("lock_uncontended_ns", try median(runs) { try lockUncontendedNs(2_000_000 / scale) },
               "Lock acquire + release, nobody else wants it")
        try record("semaphore_handoff_ns", try median(runs) { try semaphoreHandoffNs(rounds) },
               "contended Semaphore release -> the waiting acquirer runs")
        try record("pool_map_ns_per_item", try median(runs) { try poolMapNs(100_000 / scale) },
               "Pool(size: 100).map over 100,000 trivial items, per item")
        try record("pool_map_blocking_ns_per_item", try median(runs) { try poolMapBlockingNs(100_000 / scale) },
               "the same, each item yielding once (100 workers interleave)")
        let echoSeconds = quick ? 0.5 : 5.0
        let bridgeCount = 20_000 / scale
        try record("await_async_roundtrip_ns", try median(runs) { try BridgeBench.awaitAsyncRoundTripNs(bridgeCount) },
                   "awaitAsync { i } from a greenlet: a task on the hub's executor, same thread")
        try record("hub_run_roundtrip_ns", try median(runs) { try BridgeBench.hubRunRoundTripNs(bridgeCount) },
                   "HubHandle.run { i } from a task on the hub's executor: a greenlet spawned at once, same thread")
        try record("cross_thread_run_roundtrip_ns", try median(runs) { try BridgeBench.crossThreadRunRoundTripNs(bridgeCount) },
                   "HubHandle.run { i } from a task on Swift's global executor: across threads both ways")
        try record("hub_executor_yield_ns", try median(runs) { try BridgeBench.hubExecutorYieldNs(bridgeCount * 5) },
                   "Task.yield() in a task on the hub's executor")
        try record("task_yield_ns", try median(runs) { try BridgeBench.taskYieldNs(bridgeCount * 5) },
                   "Task.yield() on Swift's global executor (two cooperative threads)")
        record("condvar_pingpong_ns", median(runs) { BridgeBench.condvarPingPongNs(bridgeCount) },
               "a token between two pthreads through a mutex and condition variables: a cross-thread round trip's floor")
        let echoRuns = quick ? 1 : 3
        try record("tcp_echo_roundtrips_per_s", try median(echoRuns) {
            try EchoBench.roundTripsPerSecond(hubs: 1, workKib: 0, seconds: echoSeconds)
        }, "echo-server, 1 hub; echo-load: 100 connections, 64 B, separate process")
        try record("tcp_echo_roundtrips_per_s_2hubs", try median(echoRuns) {
            try EchoBench.roundTripsPerSecond(hubs: 2, workKib: 0, seconds: echoSeconds)
        }, "the same, 2 hubs (the load client shares the 2 cores)")
        try record("cpu_echo_scaling_2hubs", try median(echoRuns) {
            let one = try EchoBench.roundTripsPerSecond(hubs: 1, workKib: 64, seconds: echoSeconds)
            let two = try EchoBench.roundTripsPerSecond(hubs: 2, workKib: 64, seconds: echoSeconds)
            return two / one
        }, "2 hubs / 1 hub, each message hashing 64 KiB")
        try record("ws_echo_msgs_per_s", try median(echoRuns) {
            try EchoBench.wsEchoMessagesPerSecond(messages: quick ? 200 : 2000)
        }, "ws-echo --port, 1 hub; ws-echo --connect: 100 connections, 64 B binary, separate process")
        let wrkSeconds = quick ? 1 : 5
        for (key, hubs) in [("http_hello_rps", 1), ("http_hello_rps_2hubs", 2)] where wanted(key) {
            guard let wrk = EchoBench.wrk else {
                FileHandle.standardError.write(Data("green-bench: wrk not found, \(key) skipped (make bench installs it)\n".utf8))
                continue
            }
            try record(key, try median(echoRuns) {
                try EchoBench.httpHelloRequestsPerSecond(wrk: wrk, hubs: hubs, seconds: wrkSeconds)
            }, "wrk -t2 -c100 -d\(wrkSeconds)s against http-hello, \(hubs) hub\(hubs == 1 ? "" : "s")")
        }
        if wanted("debug_greenlets_p99_ms"), let wrk = EchoBench.wrk {
            var p50 = 0.0
            try record("debug_greenlets_p99_ms", try median(echoRuns) {
                let r = try EchoBench.debugEndpointUnderLoadMs(wrk: wrk, requests: quick ? 20 : 200)
                p50 = r.p50
                return r.p99
            }, "GET /debug/greenlets from http-hello --debug-endpoints while wrk -t2 -c100 loads it, p99 of \(quick ? 20 : 200)")
            figures[figures.count - 1].2 += String(format: " (p50 %.1f ms)", p50)
        }
        if wanted("https_hello_rps"), let wrk = EchoBench.wrk {
            let tls = try EchoBench.throwawayCertificate()
            try record("https_hello_rps", try median(echoRuns) {
                try EchoBench.httpHelloRequestsPerSecond(wrk: wrk, hubs: 1, seconds: wrkSeconds, tls: tls)
            }, "the same over TLS (ECDSA P-256, keep-alive: a handshake per connection), 1 hub")
        }
        if wanted("demo_crawl_pages_per_s") {
            var lastLine = ""
            try record("demo_crawl_pages_per_s", try median(echoRuns) {
                let (rate, line) = try EchoBench.demoCrawlPagesPerSecond()
                lastLine = line
                return rate
            }, "crawl --demo: 2,000 pages, 20 ms per response, concurrency 100")
            FileHandle.standardError.write(Data("green-bench: last demo crawl: \(lastLine)\n".utf8))
        }
        if wanted("link_extract") {
            // The three parsers take turns within each run, so that a drift
            // of this machine's speed between minutes lands on all three;
            // each ratio is the median of the runs' own ratios.
            let corpus = try LinkBench.load(corpus ?? LinkBench.defaultCorpus, every: quick ? 10 : 1)
            var ours = 0, arena = 0, stock = 0
            var runsOf: (libxml2: [Double], arena: [Double], stock: [Double]) = ([], [], [])
            for _ in 0..<max(1, runs) {
                runsOf.libxml2.append(LinkBench.libxml2MBPerSecond(corpus, links: &ours))
                runsOf.arena.append(LinkBench.gumboMBPerSecond(corpus, arena: true, links: &arena))
                runsOf.stock.append(LinkBench.gumboMBPerSecond(corpus, arena: false, links: &stock))
            }
            let perRun = { (a: [Double], b: [Double]) in zip(a, b).map { $0 / $1 } }
            record("link_extract_mb_per_s", middle(runsOf.libxml2),
                   String(format: "libxml2 push parser in SAX mode, fed as a parse thread is, links resolved: %d pages, %.1f MB",
                          corpus.pages.count, corpus.megabytes))
            record("gumbo_link_extract_mb_per_s", middle(runsOf.arena),
                   "gumbo (HTML5 tree) as the crawler used it (bump arena), the same pages and links")
            record("gumbo_stock_link_extract_mb_per_s", middle(runsOf.stock),
                   "gumbo as it ships (its own allocator: malloc and free per node), the same pages and links")
            record("link_extract_vs_gumbo", middle(perRun(runsOf.libxml2, runsOf.arena)),
                   "link_extract_mb_per_s / gumbo_link_extract_mb_per_s, median of the runs' ratios")
            // On python3-doc the parsers agree link for link (LinkExtractionTests);
            // another corpus may hold what they read differently (<textarea>
            // content, CDATA, a late <frameset>).
            record("link_extract_vs_stock_gumbo", middle(perRun(runsOf.libxml2, runsOf.stock)),
                   "link_extract_mb_per_s / gumbo_stock_link_extract_mb_per_s, median of the runs' ratios; links found: "
                   + "\(ours), \(arena) and \(stock)" + (ours == arena && arena == stock ? "" : " (they differ)"))
        }
        let target = maxParked ?? (quick ? 100_000 : 1_000_000)
        if wanted("max_parked") {
            let big = try parkedBytes(target)
            record("max_parked_greenlets", Double(big.parked), "greenlets parked at once on one Event")
            record("max_parked_rss_bytes", Double(big.rss), "process RSS with them parked")
        }

        if json {
            let body = figures.map { "\"\($0.0)\": \(format($0.1))" }.joined(separator: ", ")
            print("{\(body), \"runs\": \(runs), \"quick\": \(quick)}")
        } else {
            print("swift-green figures (median of \(runs) runs\(quick ? ", quick" : ""))")
            let keyWidth = max(28, (figures.map { $0.0.count }.max() ?? 0) + 2)
            for (key, value, what) in figures {
                let k = pad(key, keyWidth)
                let v = pad(format(value), 14)
                print("  \(k)\(v)\(what)")
            }
        }
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}

func format(_ v: Double) -> String {
    if v >= 1000 || v == v.rounded() { return String(Int64(v.rounded())) }
    // Below 1 (seconds of the cold starts), three decimals.
    if v < 1 { return String(Double(Int(v * 1000)) / 1000) }
    return String(Double(Int(v * 100)) / 100)
}

func median(_ runs: Int, _ f: () throws -> Double) rethrows -> Double {
    var xs: [Double] = []
    for _ in 0..<max(1, runs) { xs.append(try f()) }
    return middle(xs)
}

/// The median of `xs` (not empty).
func middle(_ xs: [Double]) -> Double {
    let xs = xs.sorted()
    return xs.count % 2 == 1 ? xs[xs.count / 2] : (xs[xs.count / 2 - 1] + xs[xs.count / 2]) / 2
}

func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

// MARK: - Switch figures

func cSwitchNs(_ switches: Int) -> Double {
    let roundTrips = switches / 2
    let t0 = monotonicNs()
    guard green_bench_c_pingpong(roundTrips, 64 * 1024) == 0 else { return .nan }
    return Double(monotonicNs() - t0) / Double(roundTrips * 2)
}

/// State of the Swift ping-pong, in manually allocated memory: never behind
/// `&` of a Swift variable while a switch is in flight. `nonisolated(unsafe)`
/// (a pointer is not Sendable): allocated once, never freed, used by the
/// benchmark's main thread and the context it switches to, one at a time.
struct PingPong {
    var main = green_context()
    var peer = green_context()
}
nonisolated(unsafe) let pingPong: UnsafeMutablePointer<PingPong> = {
    let p = UnsafeMutablePointer<PingPong>.allocate(capacity: 1)
    p.initialize(to: PingPong())
    return p
}()

func runtimeSwitchNs(_ switches: Int, kind: green_context_kind) -> Double {
    let pool = green_stack_pool_create(64 * 1024, -1)!
    defer { green_stack_pool_destroy(pool) }
    let stack = green_stack_acquire(pool)!
    defer { green_stack_release(pool, stack) }
    let mainCtx = withUnsafeMutablePointer(to: &pingPong.pointee.main) { $0 }
    let peerCtx = withUnsafeMutablePointer(to: &pingPong.pointee.peer) { $0 }
    green_context_init_current(mainCtx, Int32(kind.rawValue))
    peerCtx.pointee = green_context()
    green_context_init(peerCtx, Int32(kind.rawValue), stack, { _ in
        let p = pingPong
        while true {
            green_context_switch(withUnsafeMutablePointer(to: &p.pointee.peer) { $0 },
                                 withUnsafeMutablePointer(to: &p.pointee.main) { $0 })
        }
    }, nil)
    let roundTrips = switches / 2
    let t0 = monotonicNs()
    for _ in 0..<roundTrips {
        green_context_switch(mainCtx, peerCtx)
    }
    let ns = Double(monotonicNs() - t0) / Double(roundTrips * 2)
    green_context_destroy(peerCtx)
    green_context_destroy(mainCtx)
    return ns
}

// MARK: - Scheduler figures

func yieldNs(_ yields: Int) throws -> Double {
    try yieldNs(yields, stackMode: .dedicated, pad: false).ns
}

/// Two greenlets alternating `Green.sleep(0)`; with `pad`, from under a
/// frame of 1 KiB (a typical depth). Also returns the mean compact image
/// copied per save or restore (0 for dedicated stacks).
func yieldNs(_ yields: Int, stackMode: StackMode, pad: Bool) throws -> (ns: Double, imageBytes: Double) {
    let perGreenlet = yields / 2
    let start = Event()
    let body = {
        try start.wait()
        if pad {
            try yieldUnderAFrame(perGreenlet)
        } else {
            for _ in 0..<perGreenlet { try Green.sleep(0) }
        }
    }
    let a = spawn(stackMode: stackMode, body)
    let b = spawn(stackMode: stackMode, body)
    try Green.sleep(0) // both are parked on the event now
    let before = Hub.current.compactStats
    let t0 = monotonicNs()
    start.set()
    try a.join()
    try b.join()
    let ns = Double(monotonicNs() - t0) / Double(perGreenlet * 2)
    let after = Hub.current.compactStats
    let copies = Double(after.saves - before.saves + after.restores - before.restores)
    return (ns, copies > 0 ? Double(after.bytesCopied - before.bytesCopied) / copies : 0)
}

/// Yields `count` times from under a frame holding 1 KiB of locals.
@inline(never)
func yieldUnderAFrame(_ count: Int) throws {
    try withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 128) { locals in
        for i in 0..<locals.count { locals[i] = UInt64(i) }
        for i in 0..<count {
            try Green.sleep(0)
            locals[i & 127] &+= 1
        }
        if locals[0] == .max { print("") }   // keeps the frame
    }
}

/// State of the compact ping-pong, in manually allocated memory (as
/// `pingPong`: allocated once, one thread, one context at a time).
struct CompactPingPong {
    var main = green_context()
    var a = green_context()
    var b = green_context()
    var left = 0
}
nonisolated(unsafe) let compactPingPong: UnsafeMutablePointer<CompactPingPong> = {
    let p = UnsafeMutablePointer<CompactPingPong>.allocate(capacity: 1)
    p.initialize(to: CompactPingPong())
    return p
}()

/// Two compact contexts on one shared run stack switching to each other:
/// every switch saves one image and restores the other.
func compactSwitchNs(_ switches: Int) -> Double {
    guard let shared = green_shared_stack_create(64 * 1024) else { return .nan }
    defer { green_shared_stack_destroy(shared) }
    let p = compactPingPong
    let main = withUnsafeMutablePointer(to: &p.pointee.main) { $0 }
    let a = withUnsafeMutablePointer(to: &p.pointee.a) { $0 }
    let b = withUnsafeMutablePointer(to: &p.pointee.b) { $0 }
    green_context_init_current(main, Int32(GREEN_CONTEXT_ASM.rawValue))
    a.pointee = green_context()
    b.pointee = green_context()
    green_context_init_compact(a, shared, { _ in
        let p = compactPingPong
        while true {
            p.pointee.left -= 1
            green_context_switch(withUnsafeMutablePointer(to: &p.pointee.a) { $0 },
                                 p.pointee.left > 0 ? withUnsafeMutablePointer(to: &p.pointee.b) { $0 }
                                                    : withUnsafeMutablePointer(to: &p.pointee.main) { $0 })
        }
    }, nil)
    green_context_init_compact(b, shared, { _ in
        let p = compactPingPong
        while true {
            green_context_switch(withUnsafeMutablePointer(to: &p.pointee.b) { $0 },
                                 withUnsafeMutablePointer(to: &p.pointee.a) { $0 })
        }
    }, nil)
    // a and b each run once first, so that both have images.
    p.pointee.left = 2
    green_context_switch(main, a)
    let rounds = switches / 2
    p.pointee.left = rounds + 1
    let t0 = monotonicNs()
    green_context_switch(main, a)
    let ns = Double(monotonicNs() - t0) / Double(rounds * 2)
    green_context_compact_release(a)
    green_context_compact_release(b)
    green_context_destroy(main)
    return ns
}

func spawnJoinNs(_ count: Int) throws -> Double {
    let t0 = monotonicNs()
    for _ in 0..<count {
        let g = spawn { () }
        try g.join()
    }
    return Double(monotonicNs() - t0) / Double(count)
}

func trimMalloc() { ProcessMemory.trimMalloc() }

func residentBytes() -> Int { ProcessMemory.residentBytes() }

/// Parks `count` greenlets on one Event, measures RSS growth, wakes them
/// and joins them.
func parkedBytes(_ count: Int, stackMode: StackMode = .dedicated) throws -> (perGreenlet: Double, parked: Int, rss: Int) {
    let event = Event()
    var started = 0
    // What an earlier run freed goes back to the kernel first (glibc keeps
    // freed heap for reuse, and compact greenlets live on the heap): else
    // a second run would fill the first one's memory and show no growth.
    trimMalloc()
    let before = residentBytes()
    var greenlets: [Greenlet<Void>] = []
    greenlets.reserveCapacity(count)
    for _ in 0..<count {
        greenlets.append(spawn(stackMode: stackMode) {
            started += 1
            try event.wait()
        })
    }
    // Let every greenlet run up to its wait.
    while started < count { try Green.sleep(0) }
    let after = residentBytes()
    event.set()
    for g in greenlets { try g.join() }
    return (Double(after - before) / Double(count), count, after)
}
