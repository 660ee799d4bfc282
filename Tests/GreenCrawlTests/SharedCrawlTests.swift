import Foundation
import Glibc
import Green
@testable import GreenCrawl
import GreenRedis
import XCTest
import GreenTestSupport

/// Crawls shared through Redis: the frontier's steps in one process, then
/// `crawl` processes (the real program) against a real `redis-server`, all
/// checked against the single-process crawl of the same demo site.
final class SharedCrawlTests: GreenTestCase {
    private var servers: [RedisServer] = []
    private var children: [Subprocess] = []
    private var directory = ""

    override func setUp() {
        super.setUp()
        var template = Array("/tmp/green-shared-crawl-XXXXXX".utf8CString)
        directory = mkdtemp(&template).map { String(cString: $0) } ?? "/tmp"
    }

    override func tearDown() {
        for c in children { c.kill(SIGKILL); _ = try? c.wait(timeout: 5) }
        children.removeAll()
        servers.removeAll()
        if directory != "/tmp" { try? FileManager.default.removeItem(atPath: directory) }
        super.tearDown()
    }

    private func startRedis(appendOnly: Bool = false) throws -> RedisServer {
        let s = try RedisServer(appendOnly: appendOnly)
        servers.append(s)
        return s
    }

    // MARK: The frontier's steps, two "processes" in one

    private func settings(_ start: String, maxPages: Int = 100) -> RedisFrontier.Settings {
        RedisFrontier.Settings(start: start, maxPages: maxPages, maxDepth: 10, allowedHosts: ["h"], delay: 0,
                               obeyRobots: true)
    }

    private func frontier(_ redis: RedisServer, _ id: String, lease: Double = 5, resume: Bool = false,
                          clock: RedisFrontier.Clock = .server) throws -> RedisFrontier {
        var o = RedisFrontier.Options(url: redis.url, crawlID: id)
        o.lease = lease
        o.resume = resume
        o.clock = clock
        return try RedisFrontier(options: o)
    }

    private func entries(_ claim: RedisFrontier.Claim) -> [String] {
        if case .entries(let es) = claim { return es.map(\.url) }
        return []
    }

    /// On the hub's virtual clock (both frontiers share it): the leases
    /// expire when the test moves the clock, exactly, without waiting.
    func testLeasesAreReclaimedOnlyAfterTheyExpireAndEveryURLIsRecordedOnce() throws {
        try withVirtualTime { try leasesAreReclaimedOnlyAfterTheyExpire() }
    }

    private func leasesAreReclaimedOnlyAfterTheyExpire() throws {
        let redis = try startRedis()
        let a = try frontier(redis, "leases", lease: 1, clock: .hub)
        let b = try frontier(redis, "leases", lease: 1, clock: .hub)
        guard case .joined(let s, created: true) = try a.join(settings("http://h/")) else { return XCTFail("not created") }
        XCTAssertEqual(s, settings("http://h/"))
        guard case .joined(let joined, created: false) = try b.join(nil) else { return XCTFail("not joined") }
        XCTAssertEqual(joined, s, "a process that joins takes the crawl's settings")

        let root = try a.claim(5)
        XCTAssertEqual(entries(root), ["http://h/"])
        guard case .wait(let seconds) = try b.claim(5) else { return XCTFail("the only URL is leased to a") }
        XCTAssertLessThanOrEqual(seconds, 1)
        guard case .entries(let rootEntry) = root else { return XCTFail() }
        XCTAssertTrue(try a.complete(rootEntry[0], failed: false, links: ["http://h/x", "http://h/y", "http://h/z",
                                                                           "http://h/"], maxPages: 100))
        let bx = try b.claim(2)
        XCTAssertEqual(entries(bx), ["http://h/x", "http://h/y"])
        let az = try a.claim(5)
        XCTAssertEqual(entries(az), ["http://h/z"], "the start URL was seen: not queued again")

        // b renews its leases, a does not: after a lease, a's URL goes back
        // and b claims it; b's own stay b's.
        try Hub.current.advanceVirtualTime(by: 0.6)
        guard case .entries(let bEntries) = bx, case .entries(let aEntries) = az else { return XCTFail() }
        XCTAssertEqual(try b.renew(bEntries), 0)
        try Hub.current.advanceVirtualTime(by: 0.6)
        XCTAssertEqual(entries(try b.claim(5)), ["http://h/z"], "a's expired lease reclaimed")
        XCTAssertEqual(try b.report().reclaimed, 1)
        XCTAssertEqual(try a.renew(aEntries), 1, "a learns it lost its lease")

        // a finishes z first: its record counts; b's fetch of z is a refetch.
        XCTAssertTrue(try a.complete(aEntries[0], failed: true, links: [], maxPages: 100))
        XCTAssertFalse(try b.complete(aEntries[0], failed: false, links: [], maxPages: 100))
        // A record tried again (its reply lost) changes nothing.
        XCTAssertTrue(try b.complete(bEntries[0], failed: false, links: [], maxPages: 100))
        XCTAssertTrue(try b.complete(bEntries[0], failed: false, links: [], maxPages: 100))
        guard case .wait = try a.claim(5) else { return XCTFail("y is still leased to b") }
        XCTAssertTrue(try b.complete(bEntries[1], failed: false, links: [], maxPages: 100))
        guard case .finished = try a.claim(5) else { return XCTFail("nothing queued, nothing leased: finished") }
        guard case .finished = try b.claim(5) else { return XCTFail("finished for everyone") }

        let report = try a.report()
        XCTAssertTrue(report.finished)
        XCTAssertEqual(report.pages, 4)
        XCTAssertEqual(report.errors, 1)
        XCTAssertEqual(report.refetched, 1)
        XCTAssertEqual(report.pagesByProcess.map(\.1).sorted(), [2, 2])
        XCTAssertNotNil(report.seconds)
        guard case .finished = try frontier(redis, "leases").join(nil) else { return XCTFail("a finished crawl") }
    }

    func testJoiningStoppingResumingAndTheCrawlsLimits() throws {
        let redis = try startRedis()
        XCTAssertThrowsError(try frontier(redis, "r", resume: true).join(nil)) {
            XCTAssertTrue("\($0)".contains("no crawl \"r\" to resume"), "\($0)")
        }
        XCTAssertThrowsError(try frontier(redis, "r").join(nil)) {
            XCTAssertTrue("\($0)".contains("give a start URL"), "\($0)")
        }
        XCTAssertThrowsError(try RedisFrontier(options: RedisFrontier.Options(url: redis.url, crawlID: "a b")))
        let a = try frontier(redis, "r")
        _ = try a.join(settings("http://h/", maxPages: 3))
        XCTAssertThrowsError(try frontier(redis, "r").join(settings("http://other/"))) {
            XCTAssertTrue("\($0)".contains("is a crawl of http://h/"), "\($0)")
        }
        guard case .entries(let root) = try a.claim(1) else { return XCTFail() }
        // max-pages 3: the start URL and two links; the rest are dropped.
        XCTAssertTrue(try a.complete(root[0], failed: false, links: ["http://h/1", "http://h/2", "http://h/3"],
                                     maxPages: 3))
        guard case .entries(let claimed) = try a.claim(1) else { return XCTFail() }
        XCTAssertEqual(claimed.map(\.url), ["http://h/1"])
        // a stops: what it claimed goes back at once, to the head.
        try a.leave(releasing: claimed)
        XCTAssertThrowsError(try frontier(redis, "r").join(nil)) {
            XCTAssertTrue("\($0)".contains("was stopped (1 pages done, 2 queued"), "\($0)")
            XCTAssertTrue("\($0)".contains("--resume"), "\($0)")
        }
        let c = try frontier(redis, "r", resume: true)
        guard case .joined = try c.join(nil) else { return XCTFail("resume") }
        XCTAssertEqual(entries(try c.claim(5)), ["http://h/1", "http://h/2"])
        try c.forget()
        XCTAssertThrowsError(try c.report()) { XCTAssertTrue("\($0)".contains("no crawl"), "\($0)") }
        // A crawl whose keys are gone is not carried on from nothing.
        XCTAssertThrowsError(try c.claim(5)) { XCTAssertTrue("\($0)".contains("is gone from"), "\($0)") }
        XCTAssertThrowsError(try c.complete(claimed[0], failed: false, links: [], maxPages: 3)) {
            XCTAssertTrue("\($0)".contains("is gone from"), "\($0)")
        }
    }

    func testPolitenessSlotsAndRobotsAreSharedByTheProcesses() throws {
        let redis = try startRedis()
        let a = try frontier(redis, "p")
        let b = try frontier(redis, "p")
        // Both connected and their script loaded first.
        XCTAssertEqual(try a.politenessWait(origin: "http://a", delay: 1), 0)
        XCTAssertEqual(try b.politenessWait(origin: "http://b", delay: 1), 0)
        XCTAssertEqual(try a.politenessWait(origin: "http://h", delay: 1), 0)
        let wait = try b.politenessWait(origin: "http://h", delay: 1)
        XCTAssertGreaterThan(wait, 0.5, "b's request comes a delay after a's")
        XCTAssertLessThanOrEqual(wait, 1)
        XCTAssertEqual(try a.politenessWait(origin: "http://other", delay: 1), 0, "per host")
        XCTAssertNil(try b.storedRobots(origin: "http://h"))
        let rules = "User-agent: *\nDisallow: /x\n"
        XCTAssertEqual(try a.storeRobots(origin: "http://h", text: rules), rules)
        XCTAssertEqual(try b.storeRobots(origin: "http://h", text: "the first one stays"), rules)
        XCTAssertEqual(try b.storedRobots(origin: "http://h"), rules)
    }

    /// A crawl in this process through `redis`, its records in order.
    private func crawlHere(_ root: URL, _ redis: RedisServer, id: String, lease: Double = 5, renewEvery: Double? = nil,
                           patience: Double = 30,
                           record: @escaping (CrawlRecord, Int) throws -> Void = { _, _ in }) throws
        -> (SharedCrawlSummary, [String]) {
        var o = RedisFrontier.Options(url: redis.url, crawlID: id)
        o.lease = lease
        o.renewEvery = renewEvery
        o.patience = patience
        var options = Crawler.Options()
        options.concurrency = 8
        options.timeout = 3
        var urls: [String] = []
        let summary = try withTimeout(120) {
            try Crawler(options: options).crawl(sharing: try RedisFrontier(options: o), start: root) {
                urls.append($0.url)
                try record($0, urls.count)
            }
        }
        return (summary, urls)
    }

    func testLeasesThatExpireUnderThisProcessAreNotFetchedTwiceByIt() throws {
        let (site, root, baseline) = try siteAndBaseline(pages: 300, latency: 0.01)
        defer { site.stop() }
        let redis = try startRedis()
        // The hub stalls (a blocking call) longer than the lease, three
        // times, and no renewal comes first (none at all): the leases it
        // holds expire, and its own next claim takes them back. The copies
        // it holds are the ones fetched.
        let (summary, urls) = try crawlHere(root, redis, id: "stall", lease: 0.3, renewEvery: 1000) { _, n in
            if n % 80 == 0 { usleep(400_000) }
        }
        XCTAssertGreaterThan(summary.report.reclaimed, 0, "leases expired during the stalls")
        XCTAssertEqual(urls.count, Set(urls).count, "a URL recorded twice")
        XCTAssertEqual(Set(urls), baseline.urls)
        XCTAssertEqual(summary.report.pages, baseline.urls.count)
        XCTAssertEqual(summary.refetched, 0)
        XCTAssertEqual(site.fetchCounts.filter { $0.key != "/robots.txt" }, baseline.counts)
    }

    func testACrawlFailsPlainlyWhenRedisIsGoneOrItsKeysAre() throws {
        let (site, root, _) = try siteAndBaseline(pages: 300, latency: 0.01)
        defer { site.stop() }
        // Redis gone for longer than the crawl's patience: the crawl ends
        // with an error naming Redis (no hang, no greenlet left behind).
        let redis = try startRedis()
        XCTAssertThrowsError(try crawlHere(root, redis, id: "gone", patience: 0.5) { _, n in
            if n == 50 { redis.stop() }
        }) { XCTAssertTrue("\($0)".contains("unusable for 0.5 s"), "\($0)") }
        // Its keys deleted mid-crawl (a flush, a restart without
        // persistence): an error, not a new crawl from nothing.
        let other = try startRedis()
        let client = try RedisClient(url: other.url)
        XCTAssertThrowsError(try crawlHere(root, other, id: "flushed") { _, n in
            if n == 50 { try client.send("FLUSHALL") }
        }) { XCTAssertTrue("\($0)".contains("is gone from"), "\($0)") }
    }

    // MARK: Processes

    private struct Baseline {
        let urls: Set<String>
        /// Requests per path (robots.txt left out: each process may ask).
        let counts: [String: Int]
        let errors: Int
    }

    /// The demo site on its own thread, and what a single-process crawl
    /// of it records and requests. The site's slow page answers within
    /// the crawl's timeout, so that no run waits for it to fail.
    private func siteAndBaseline(pages: Int, latency: Double) throws -> (DemoSite, URL, Baseline) {
        let site = DemoSite(pages: pages, latency: latency, slowSeconds: 0.3)
        let root = try site.start(ownThread: true)
        var options = Crawler.Options()
        options.concurrency = 32
        options.timeout = 3
        var urls: [String] = []
        var errors = 0
        _ = try withTimeout(120) {
            try Crawler(options: options).crawl(root) {
                urls.append($0.url)
                if $0.error != nil || ($0.status ?? 0) >= 400 { errors += 1 }
            }
        }
        XCTAssertEqual(urls.count, site.expected.urls)
        let counts = site.fetchCounts.filter { $0.key != "/robots.txt" }
        site.resetCounts()
        return (site, root, Baseline(urls: Set(urls), counts: counts, errors: errors))
    }

    private struct Run {
        let status: Subprocess.Status?
        let output: String
        let errors: String
        let records: [String]
    }

    /// Starts `crawl` processes on the shared crawl `id`.
    private func startCrawlers(_ count: Int, root: String, redis: String, id: String, lease: Double = 5,
                               awaitAll: Bool = true, extra: [String] = [],
                               prefixes: [[String]]? = nil) throws -> [(Subprocess, String)] {
        let exe = try XCTUnwrap(builtExecutable(named: "crawl"), "crawl not built next to the tests")
        return try (0..<count).map { i in
            let output = "\(directory)/\(id)-\(i)-\(children.count).jsonl"
            let args = [exe, root, "--frontier", redis, "--crawl-id", id, "--concurrency", "8", "--timeout", "3",
                        "--parse-threads", "0", "--lease", String(lease), "--output", output]
                + (awaitAll ? ["--await-processes", String(count)] : []) + extra
            let p = try Subprocess((prefixes?[i] ?? []) + args, stdin: .null, stdout: .pipe, stderr: .pipe)
            children.append(p)
            return (p, output)
        }
    }

    /// Waits for every process (at most 120 s) and reads what it wrote.
    private func finish(_ started: [(Subprocess, String)]) throws -> [Run] {
        // In a scope: a timeout also ends the greenlets reading the children.
        try withTimeout(120) {
            try withScope { scope in try finish(started, scope) }
        }
    }

    private func finish(_ started: [(Subprocess, String)], _ scope: Scope) throws -> [Run] {
        let waits = started.map { p, _ in scope.spawn { try p.communicate() } }
        return try zip(started, waits).map { process, wait in
            let (out, err) = try wait.get()
            let text = (try? String(contentsOfFile: process.1, encoding: .utf8)) ?? ""
            let records = try text.split(separator: "\n").map { line -> String in
                let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                return try XCTUnwrap(json?["url"] as? String, "a record without a URL: \(line)")
            }
            return Run(status: process.0.status, output: String(decoding: out, as: UTF8.self),
                       errors: String(decoding: err, as: UTF8.self), records: records)
        }
    }

    /// The report line's "N pages by K processes".
    private func reported(_ run: Run) -> (pages: Int, processes: Int)? {
        guard let r = run.output.range(of: #"finished: (\d+) pages by (\d+) process"#, options: .regularExpression) else {
            return nil
        }
        let numbers = run.output[r].split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
    }

    /// Every URL recorded by exactly one process, the records together
    /// those of the single-process crawl, and every path requested as
    /// often as that crawl requested it.
    private func assertExactlyOnce(_ runs: [Run], _ baseline: Baseline, _ site: DemoSite?,
                                   file: StaticString = #filePath, line: UInt = #line) {
        let all = runs.flatMap(\.records)
        XCTAssertEqual(all.count, Set(all).count, "a URL recorded twice", file: file, line: line)
        XCTAssertEqual(Set(all), baseline.urls, "not the single-process crawl's pages", file: file, line: line)
        if let site {
            let counts = site.fetchCounts.filter { $0.key != "/robots.txt" }
            let differing = counts.filter { baseline.counts[$0.key] != $0.value }
            XCTAssertEqual(counts.count, baseline.counts.count, "paths requested", file: file, line: line)
            XCTAssertTrue(differing.isEmpty, "requested more or less often than by one process: \(differing.prefix(5))",
                          file: file, line: line)
        }
    }

    private func crawlWith(processes n: Int) throws {
        // 30 ms a page: the crawl lasts long enough for every process to
        // take part, however slowly each starts after the common start.
        let (site, root, baseline) = try siteAndBaseline(pages: 400, latency: 0.03)
        defer { site.stop() }
        let redis = try startRedis()
        let runs = try finish(try startCrawlers(n, root: root.absoluteString, redis: redis.url, id: "p\(n)"))
        for r in runs {
            XCTAssertEqual(r.status, .exited(2), "the demo site's planted errors make status 2: \(r.output) \(r.errors)")
            XCTAssertEqual(reported(r)?.pages, baseline.urls.count, r.output)
            XCTAssertEqual(reported(r)?.processes, n, "every process took part: \(r.output)")
            XCTAssertTrue(r.output.contains("\(baseline.errors) errors"), r.output)
            XCTAssertFalse(r.records.isEmpty)
        }
        assertExactlyOnce(runs, baseline, site)
    }

    func testThePerHostCapHoldsOverEveryProcessOfTheCrawl() throws {
        // Each process may open 3 connections to the host (--per-host 3),
        // 6 between two; the crawl, begun with --per-host 3, allows 3 in all.
        let site = DemoSite(pages: 150, latency: 0.02, slowSeconds: 0.3)
        let root = try site.start(ownThread: true)
        defer { site.stop() }
        let redis = try startRedis()
        let runs = try finish(try startCrawlers(2, root: root.absoluteString, redis: redis.url, id: "cap",
                                                extra: ["--per-host", "3"]))
        for r in runs {
            XCTAssertEqual(r.status, .exited(2), "the planted errors make status 2: \(r.output) \(r.errors)")
            XCTAssertEqual(reported(r)?.processes, 2, "every process took part: \(r.output)")
            XCTAssertEqual(reported(r)?.pages, site.expected.urls, r.output)
        }
        XCTAssertLessThanOrEqual(site.maxInFlight, 3)
        XCTAssertGreaterThanOrEqual(site.maxInFlight, 2, "the processes fetched side by side")
        // The slots are forgotten with the crawl.
        try frontier(redis, "cap").forget()
        let left = try RedisClient(url: redis.url).send("KEYS", "crawl:{cap}:*")
        XCTAssertEqual(left.array?.count, 0, "\(left)")
    }

    func testTwoProcessesFetchEveryPageExactlyOnce() throws {
        try crawlWith(processes: 2)
    }

    func testFourProcessesFetchEveryPageExactlyOnce() throws {
        try crawlWith(processes: 4)
    }

    /// Waits until the crawl has recorded `pages` pages.
    private func waitForPages(_ pages: Int, redis: RedisServer, id: String) throws {
        let client = try RedisClient(url: redis.url)
        try withTimeout(60) {
            while try client.send("HLEN", "crawl:{\(id)}:done").int ?? 0 < pages { try Green.sleep(0.005) }
        }
    }

    func testAProcessKilledMidCrawlLosesNoPage() throws {
        let (site, root, baseline) = try siteAndBaseline(pages: 400, latency: 0.04)
        defer { site.stop() }
        let redis = try startRedis()
        let started = try startCrawlers(2, root: root.absoluteString, redis: redis.url, id: "kill", lease: 1)
        try waitForPages(100, redis: redis, id: "kill")
        started[0].0.kill(SIGKILL)
        let runs = try finish(started)
        XCTAssertEqual(runs[0].status, .signaled(SIGKILL))
        XCTAssertEqual(runs[1].status, .exited(2), runs[1].output + runs[1].errors)
        XCTAssertEqual(reported(runs[1])?.pages, baseline.urls.count, runs[1].output)
        // Every page recorded in Redis, each by one process; the killed
        // process's leases went back and were fetched by the other.
        let client = try RedisClient(url: redis.url)
        let done = try client.send("HKEYS", "crawl:{kill}:done").array?.compactMap(\.string) ?? []
        XCTAssertEqual(done.count, Set(done).count)
        XCTAssertEqual(Set(done), baseline.urls)
        let reclaimed = try client.send("HGET", "crawl:{kill}:meta", "reclaimed").string.flatMap { Int($0) } ?? 0
        XCTAssertGreaterThan(reclaimed, 0, "the killed process held leases")
        // The files hold whole lines, no URL twice; a page the killed
        // process recorded in Redis but had not written yet is missing
        // from them (and only such pages).
        let all = runs.flatMap(\.records)
        XCTAssertEqual(all.count, Set(all).count)
        XCTAssertTrue(Set(all).isSubset(of: baseline.urls))
        XCTAssertLessThanOrEqual(baseline.urls.count - all.count, 8)
        // Requested again: only pages whose fetch the kill interrupted.
        let counts = site.fetchCounts.filter { $0.key != "/robots.txt" }
        XCTAssertEqual(Set(counts.keys), Set(baseline.counts.keys))
        let extra = counts.reduce(0) { $0 + $1.value - (baseline.counts[$1.key] ?? 0) }
        XCTAssertGreaterThanOrEqual(extra, 0)
        XCTAssertLessThanOrEqual(extra, 8 + 16, "more pages fetched twice than the killed process held")
    }

    func testARedisRestartMidCrawlIsSurvived() throws {
        let (site, root, baseline) = try siteAndBaseline(pages: 400, latency: 0.04)
        defer { site.stop() }
        let redis = try startRedis(appendOnly: true)
        let started = try startCrawlers(2, root: root.absoluteString, redis: redis.url, id: "restart", lease: 5)
        try waitForPages(100, redis: redis, id: "restart")
        redis.stop()
        try Green.sleep(0.3)
        try redis.start()
        let runs = try finish(started)
        for r in runs {
            XCTAssertEqual(r.status, .exited(2), r.output + r.errors)
            XCTAssertEqual(reported(r)?.pages, baseline.urls.count, r.output)
        }
        XCTAssertTrue(runs.contains { $0.output.contains("Redis connections lost") }, runs.map(\.output).joined())
        assertExactlyOnce(runs, baseline, site)
    }

    func testAStoppedCrawlIsRefusedUntilResumedAndThenCompleted() throws {
        let (site, root, baseline) = try siteAndBaseline(pages: 400, latency: 0.04)
        defer { site.stop() }
        let redis = try startRedis()
        let first = try startCrawlers(1, root: root.absoluteString, redis: redis.url, id: "stop")
        try waitForPages(100, redis: redis, id: "stop")
        first[0].0.kill(SIGTERM)
        let stopped = try finish(first)
        XCTAssertEqual(stopped[0].status, .exited(3), stopped[0].output + stopped[0].errors)
        XCTAssertTrue(stopped[0].output.contains("stopped: --resume continues the crawl"), stopped[0].output)
        XCTAssertTrue(stopped[0].output.contains("unfinished"), stopped[0].output)

        let refused = try finish(try startCrawlers(1, root: root.absoluteString, redis: redis.url, id: "stop"))
        XCTAssertEqual(refused[0].status, .exited(1))
        XCTAssertTrue(refused[0].errors.contains("was stopped"), refused[0].errors)
        XCTAssertTrue(refused[0].records.isEmpty)

        let resumed = try finish(try startCrawlers(1, root: root.absoluteString, redis: redis.url, id: "stop",
                                                   extra: ["--resume"]))
        XCTAssertEqual(resumed[0].status, .exited(2), resumed[0].output + resumed[0].errors)
        XCTAssertEqual(reported(resumed[0])?.pages, baseline.urls.count, resumed[0].output)
        // Stopping gave back what was claimed: nothing fetched twice.
        assertExactlyOnce(stopped + resumed, baseline, site)
    }

    // MARK: Two hosts

    /// Runs `ip` with `arguments`; throws what it printed if it fails.
    @discardableResult
    private func ip(_ arguments: [String]) throws -> String {
        let p = try Subprocess(["ip"] + arguments, stdin: .null, stdout: .pipe, stderr: .pipe)
        let (out, err) = try p.communicate()
        guard p.status == .exited(0) else {
            throw TestError("ip \(arguments.joined(separator: " ")): \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Two network namespaces joined by a veth pair, as two hosts: Redis
    /// and the site on the first, one crawler on each.
    func testTheSameCrawlAcrossTwoNetworkNamespaces() throws {
        guard getuid() == 0 else { throw XCTSkip("network namespaces need root") }
        guard (try? ip(["-V"])) != nil else { throw XCTSkip("iproute2 (ip) is not installed") }
        let tag = String(getpid() % 100_000)
        let hostA = "sg-a-\(tag)", hostB = "sg-b-\(tag)"
        let subnet = "10.231.\(getpid() % 250)"
        let addressA = "\(subnet).1", addressB = "\(subnet).2"
        do {
            try ip(["netns", "add", hostA])
        } catch {
            throw XCTSkip("cannot make network namespaces here: \(error)")
        }
        defer { _ = try? ip(["netns", "delete", hostA]) }
        try ip(["netns", "add", hostB])
        defer { _ = try? ip(["netns", "delete", hostB]) }
        try ip(["-n", hostA, "link", "add", "sga\(tag)", "type", "veth", "peer", "name", "sgb\(tag)", "netns", hostB])
        try ip(["-n", hostA, "addr", "add", "\(addressA)/24", "dev", "sga\(tag)"])
        try ip(["-n", hostB, "addr", "add", "\(addressB)/24", "dev", "sgb\(tag)"])
        for (ns, dev) in [(hostA, "sga\(tag)"), (hostB, "sgb\(tag)")] {
            try ip(["-n", ns, "link", "set", dev, "up"])
            try ip(["-n", ns, "link", "set", "lo", "up"])
        }

        let (site, root, baseline) = try siteAndBaseline(pages: 400, latency: 0.01)
        site.stop()
        let redis = try RedisServer(host: addressA, port: 6379, namespace: hostA)
        servers.append(redis)
        let exe = try XCTUnwrap(builtExecutable(named: "crawl"))
        let remoteSite = try Subprocess(["ip", "netns", "exec", hostA, exe, "--serve-demo", "--listen", "\(addressA):8080",
                                         "--demo-pages", "400", "--demo-latency", "0.01", "--demo-slow", "0.3"],
                                        stdin: .null, stdout: .pipe, stderr: .pipe)
        children.append(remoteSite)
        // The site prints its URL once it listens.
        let banner = try withTimeout(30) { try remoteSite.stdout!.recv() }
        XCTAssertTrue(String(decoding: banner, as: UTF8.self).contains("http://\(addressA):8080/"))

        let runs = try finish(try startCrawlers(2, root: "http://\(addressA):8080/", redis: redis.url, id: "hosts",
                                                prefixes: [["ip", "netns", "exec", hostA], ["ip", "netns", "exec", hostB]]))
        for r in runs {
            XCTAssertEqual(r.status, .exited(2), r.output + r.errors)
            XCTAssertEqual(reported(r)?.pages, baseline.urls.count, r.output)
            XCTAssertEqual(reported(r)?.processes, 2, r.output)
            XCTAssertFalse(r.records.isEmpty, "both hosts took part")
        }
        // The same pages as on one host (the site's origin differs).
        func paths(_ urls: [String], origin: String) -> [String] {
            urls.map { $0.hasPrefix(origin) ? String($0.dropFirst(origin.count)) : $0 }
        }
        let local = root.absoluteString.dropLast()   // "http://127.0.0.1:PORT"
        let all = paths(runs.flatMap(\.records), origin: "http://\(addressA):8080")
        XCTAssertEqual(all.count, Set(all).count, "a URL recorded twice")
        XCTAssertEqual(Set(all), Set(paths(Array(baseline.urls), origin: String(local))))
    }
}
