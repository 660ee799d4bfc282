import Foundation
import Green

/// How one process's part of a shared crawl ended.
public struct SharedCrawlSummary: Sendable {
    /// This process's pages.
    public let local: CrawlSummary
    /// Pages this process fetched that another had recorded meanwhile
    /// (this one's lease had expired); not in `local` and not recorded.
    public let refetched: Int
    /// The crawl as a whole, as Redis has it.
    public let report: CrawlReport
    /// The process stopped (`stop()`) before the crawl finished; its
    /// claimed URLs went back to the frontier.
    public let stopped: Bool
    /// Whether this process started the crawl (false: it joined one).
    public let created: Bool
    /// Redis operations tried again after Redis could not be reached.
    public let redisRetries: Int
    /// Connections to Redis that broke and were made again.
    public let redisConnectionsLost: Int
}

extension Crawler {
    /// Crawls together with every other process of the same crawl id: the
    /// frontier, the seen-set, politeness and robots.txt live in Redis
    /// (see `RedisFrontier`). Starts the crawl from `start` when Redis has
    /// no crawl of that id (max-pages, max-depth, hosts, delay and robots
    /// then come from this crawler's options), or joins it (they come from
    /// the crawl; `start` may be nil). `record` is called for every URL this
    /// process records, each URL being recorded by exactly one process.
    /// Returns when the crawl is finished (the frontier empty and nothing
    /// leased) or when `stop()` was called. `awaitProcesses` holds the
    /// start until that many processes have joined.
    public func crawl(sharing frontier: RedisFrontier, start: URL?, awaitProcesses: Int = 1,
                      record: (CrawlRecord) throws -> Void) throws -> SharedCrawlSummary {
        // A stop() from here on (even during the join) is honoured.
        stopRequested = false
        var settings: RedisFrontier.Settings?
        if let start {
            guard let first = URLNormalizer.normalize(start) else {
                throw CrawlError(message: "not an http(s) URL: \(start)")
            }
            settings = RedisFrontier.Settings(
                start: first.absoluteString, maxPages: options.maxPages,
                maxDepth: min(options.maxDepth, 1 << 40),
                allowedHosts: (options.allowedHosts.isEmpty ? [first.host ?? ""] : options.allowedHosts)
                    .map { $0.lowercased() },
                delay: options.delay, obeyRobots: options.obeyRobots)
            settings?.perHost = options.perHost
        }
        let began = Hub.current.nowUpdated()
        let cpuBefore = threadCPUSeconds()
        let processBefore = processCPUSeconds()
        let joined = try frontier.join(settings)
        resetCounters()
        try openArchive()
        defer { try? closeArchive() }
        guard case .joined(let crawl, let created) = joined else {
            // Finished before this process came: nothing to do.
            return SharedCrawlSummary(local: CrawlSummary(pages: 0, errors: 0, seconds: 0), refetched: 0,
                                      report: try frontier.report(), stopped: false, created: false,
                                      redisRetries: frontier.retries, redisConnectionsLost: frontier.connectionsLost)
        }
        options.maxPages = crawl.maxPages
        options.maxDepth = crawl.maxDepth
        options.delay = crawl.delay
        options.obeyRobots = crawl.obeyRobots
        crawlPerHost = crawl.perHost
        allowed = Set(crawl.allowedHosts)
        shared = frontier
        defer { shared = nil; crawlPerHost = 0 }

        // The URLs this process holds leases on: queued here or in flight.
        var held = Set<RedisFrontier.Entry>()
        // The URLs this process has fetched and sent to be recorded. A claim
        // can return one of them: its lease had expired and come back, and
        // the claim ran on the server before the record did, though the
        // record's reply was read here first.
        var finished = Set<RedisFrontier.Entry>()
        // At most this many held: enough to keep every worker busy while
        // the next batch is claimed, few enough that a process does not
        // hoard the frontier.
        let capacity = options.concurrency + frontier.options.claimBatch
        // Set when a URL is recorded, on stop() and on a failure: wakes the
        // feeder.
        let room = Event()
        wakeFeeder = room
        defer { wakeFeeder = nil }
        let claimed = Queue<RedisFrontier.Entry>()
        let results = Queue<CrawlRecord>()
        var refetched = 0
        var recorded = 0
        var recordedErrors = 0
        // The first error of the feeder or a worker (Redis gone for longer
        // than its patience, the crawl's keys gone): everything stops.
        var failure: (any Error)?
        func fail(_ error: any Error) {
            if failure == nil { failure = error }
            room.set()
        }

        let renewerStop = Event()
        let renewer = spawn(name: "lease renewer") {
            while try !renewerStop.wait(timeout: frontier.options.renewEvery ?? frontier.options.lease / 3) {
                // A renewal that fails (Redis away) is tried again next
                // time; leases outlive two misses.
                _ = try? frontier.renew(Array(held))
            }
        }
        // Stops the renewer and waits for it: a renewal sent after leaving
        // would mark this process alive again.
        let stopRenewing = {
            renewerStop.set()
            if (try? renewer.join(timeout: 2 * frontier.options.lease)) != true { try? renewer.kill() }
        }
        defer { stopRenewing() }
        do {
            try frontier.awaitWorkers(awaitProcesses, timeout: 60) { [self] in stopRequested }
        } catch {
            stopRenewing()
            try? frontier.leave(releasing: [])
            throw error
        }

        let feeder = spawn(name: "frontier feeder") { [self] in
            defer { claimed.close() }
            var pause = 0.002
            do {
                while !stopRequested && failure == nil {
                    if held.count >= capacity {
                        room.clear()
                        try room.wait()
                        continue
                    }
                    switch try frontier.claim(min(capacity - held.count, frontier.options.claimBatch)) {
                    case .entries(let entries):
                        pause = 0.002
                        // An entry held already came back because its lease
                        // expired before this process renewed it: the claim
                        // renewed it; the copy here is still to be fetched.
                        // One fetched here already is not fetched again.
                        try frontier.dropLeases(entries.filter { finished.contains($0) })
                        for e in entries where !finished.contains(e) && held.insert(e).inserted {
                            queued += 1
                            try claimed.put(e)
                        }
                    case .wait(let seconds):
                        // Links come when a page here or elsewhere is
                        // recorded, or a lease expires: look again soon,
                        // sooner when a page of this process was recorded.
                        room.clear()
                        try room.wait(timeout: min(pause, seconds))
                        pause = min(pause * 2, 0.05)
                    case .finished:
                        return
                    }
                }
            } catch {
                fail(error)
            }
        }
        let workers = Pool(size: options.concurrency)
        for n in 0..<options.concurrency {
            let name = "shared crawl worker \(n)"
            try workers.spawn(name: name) { [self] in
                let me = Greenlet<Void>.current
                for entry in claimed {
                    queued -= 1
                    if stopRequested || failure != nil { continue }
                    inFlight += 1
                    me.name = name + ": " + entry.url
                    let r = fetch(entry.url, depth: entry.depth)
                    me.name = name
                    inFlight -= 1
                    let failed = r.error != nil || (r.status ?? 0) >= 400
                    let links = entry.depth < options.maxDepth ? r.found.filter { isAllowed($0) } : []
                    finished.insert(entry)
                    let counted: Bool
                    do {
                        counted = try frontier.complete(entry, failed: failed, links: links, maxPages: options.maxPages)
                    } catch {
                        fail(error)
                        continue
                    }
                    held.remove(entry)
                    room.set()
                    guard counted else {
                        refetched += 1
                        continue
                    }
                    done += 1
                    recorded += 1
                    if failed {
                        errors += 1
                        recordedErrors += 1
                    }
                    try results.put(r)
                }
            }
        }
        let closer = spawn {
            defer { results.close() }
            try feeder.join()
            try workers.join()
        }
        let stopAll = { if !closer.isReady { try? closer.kill() }; try? workers.kill(); try? feeder.kill() }
        defer { stopAll() }
        do {
            for r in results { try record(r) }
            try closer.get()
            if let failure { throw failure }
        } catch {
            // What this process claimed goes to the others now rather than
            // when its leases expire (if Redis can be reached).
            stopAll()
            stopRenewing()
            try? frontier.leave(releasing: Array(held))
            throw error
        }
        // Stopped: what was claimed and not fetched goes back now.
        stopRenewing()
        try frontier.leave(releasing: Array(held))
        try closeArchive()
        let mine = summary(since: began, cpuBefore: cpuBefore, processBefore: processBefore, pages: recorded, errors: recordedErrors)
        return SharedCrawlSummary(local: mine, refetched: refetched, report: try frontier.report(),
                                  stopped: stopRequested, created: created, redisRetries: frontier.retries,
                                  redisConnectionsLost: frontier.connectionsLost)
    }

    /// Asks a shared crawl to stop: no more URLs are claimed, pages in
    /// flight finish and are recorded, and the URLs claimed but not
    /// started go back to the frontier, where other processes (or a later
    /// `--resume`) take them.
    public func stop() {
        stopRequested = true
        wakeFeeder?.set()
    }
}
