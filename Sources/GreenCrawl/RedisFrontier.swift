import Foundation
import Glibc
import Green
import GreenRedis

/// The shared state of a crawl that several processes (on one machine or
/// many) run together, kept in Redis: the frontier, the seen-set, the
/// leases on in-flight URLs, per-host politeness and robots.txt. Every
/// step that reads and writes more than one key is a Lua script, so it
/// runs atomically on the server whatever the processes do meanwhile.
///
/// The keys of crawl `ID` (all under `crawl:{ID}:`):
///
/// | key        | type   | holds                                                   |
/// |------------|--------|---------------------------------------------------------|
/// | `meta`     | hash   | the crawl's settings, status, times and counters        |
/// | `frontier` | list   | entries waiting: `"DEPTH URL"`, oldest first            |
/// | `seen`     | set    | every URL ever queued (at most max-pages of them)       |
/// | `leases`   | zset   | claimed entries, scored by when their lease expires (ms) |
/// | `owners`   | hash   | claimed entry -> the process holding it                 |
/// | `done`     | hash   | fetched URL -> the process that recorded it             |
/// | `failed`   | set    | fetched URLs that failed (error or status >= 400)       |
/// | `workers`  | zset   | process -> when its heartbeat expires (ms)              |
/// | `pages_by` | hash   | process -> pages it recorded                            |
/// | `polite`   | hash   | origin -> when its next request may start (ms)          |
/// | `robots`   | hash   | origin -> its robots.txt ("" when it has none)          |
/// | `conns:O`  | zset   | connections open to origin O, scored by when they lapse |
/// | `conn_origins` | set | the origins that have a `conns:O`                      |
///
/// A process claims a batch of entries, each with a lease it renews while
/// it lives; a URL is recorded once (the `done` hash), and its new links
/// queued in the same step. A process that dies stops renewing: when its
/// leases expire, the next claim by anyone puts its entries back at the
/// head of the frontier. Times are the server's (`TIME`), so the
/// processes' clocks need not agree. The crawl is finished when the
/// frontier is empty and no entry is leased.
public final class RedisFrontier {
    public struct Options: Sendable {
        /// Where Redis is: `redis://[[user]:password@]host[:port][/db]`.
        public var url: String
        /// Processes given the same id share one crawl.
        public var crawlID: String
        /// Seconds a claimed URL stays this process's without renewal; a
        /// dead process's URLs go back to the frontier after this long.
        /// Leases are renewed every third of it.
        public var lease = 10.0
        /// Seconds between renewals of this process's leases (nil: a third
        /// of the lease).
        public var renewEvery: Double?
        /// URLs claimed per round trip.
        public var claimBatch = 16
        /// Join a crawl that was stopped (no process alive) instead of
        /// refusing to.
        public var resume = false
        /// Seconds Redis may stay unreachable before the crawl gives up.
        public var patience = 30.0
        /// Connections to Redis.
        public var connections = 4
        /// Whose clock leases, heartbeats, politeness slots and the
        /// report's times are on: the Redis server's (the default, one
        /// clock for every process wherever it runs), or the calling hub's
        /// (`Hub.now`: virtual under `withVirtualTime`), for tests of lease
        /// expiry and slots in one process, where every frontier of the
        /// crawl shares that hub's clock. Never `.hub` for processes of
        /// one crawl on different hubs or machines: their clocks differ.
        public var clock = Clock.server

        public init(url: String, crawlID: String) {
            self.url = url
            self.crawlID = crawlID
        }
    }

    /// Whose clock a frontier's scripts read (`Options.clock`).
    public enum Clock: Sendable {
        /// The Redis server's (`TIME`).
        case server
        /// The calling hub's (`Hub.now`), in one process only.
        case hub
    }

    /// Runs a script that reads the time on the clock of `Options.clock`.
    private func evaluate(_ script: TimedScript, keys: [String], arguments: [String]) throws -> RedisValue {
        switch options.clock {
        case .server:
            return try redis.evaluate(script.server, keys: keys, arguments: arguments)
        case .hub:
            let ms = String(Int((Hub.current.nowUpdated() * 1000).rounded()))
            return try redis.evaluate(script.caller, keys: keys, arguments: arguments + [ms])
        }
    }

    /// What every process of a crawl must agree on: set by the process
    /// that starts it, adopted by the ones that join.
    public struct Settings: Sendable, Equatable {
        public var start: String
        public var maxPages: Int
        public var maxDepth: Int
        public var allowedHosts: [String]
        public var delay: Double
        public var obeyRobots: Bool
        /// Requests in flight to one host at once, counted over every
        /// process of the crawl (0: no crawl-wide cap, only each
        /// process's own).
        public var perHost = 0
    }

    /// One claimed URL.
    struct Entry: Hashable {
        /// As stored: "DEPTH URL".
        let raw: String
        let url: String
        let depth: Int

        init?(raw: String) {
            guard let space = raw.firstIndex(of: " "), let d = Int(raw[..<space]) else { return nil }
            self.raw = raw
            url = String(raw[raw.index(after: space)...])
            depth = d
        }
    }

    enum Claim {
        case entries([Entry])
        /// Nothing to claim now, but entries are leased (to this process or
        /// others): their links may come, or their leases expire in at
        /// most `seconds`.
        case wait(seconds: Double)
        case finished
    }

    public let options: Options
    /// This process, as the crawl's keys name it: host, pid and a random tag.
    public let workerID: String
    let redis: RedisClient
    private let prefix: String
    /// Redis operations that failed (the server unreachable) and were tried again.
    public private(set) var retries = 0
    /// Connections to Redis that broke (and were made again).
    public var connectionsLost: Int { redis.connectionsLost }

    public init(options: Options) throws {
        guard !options.crawlID.isEmpty, !options.crawlID.contains(where: { $0 == "}" || $0.isWhitespace }) else {
            throw CrawlError(message: "--crawl-id \"\(options.crawlID)\": give a name without spaces or braces")
        }
        guard options.lease >= 0.3 else { throw CrawlError(message: "a lease must be at least 0.3 s") }
        self.options = options
        // No reconnect loop in the client: `retrying` waits Redis out,
        // within `patience`.
        redis = RedisClient(url: try RedisURL(options.url), poolSize: options.connections,
                            timeout: max(5, options.lease), reconnectAttempts: 0)
        prefix = "crawl:{\(options.crawlID)}:"
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        workerID = "\(hostName):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }

    private func key(_ name: String) -> String { prefix + name }
    private var leaseMS: String { String(Int(options.lease * 1000)) }
    /// Connection slots this process has asked for (their tokens' suffix).
    private var connectionTokens = 0

    // MARK: Joining

    enum Joined {
        case joined(Settings, created: Bool)
        case finished
    }

    /// Starts the crawl (with `settings`, when no crawl of this id exists)
    /// or joins it. Refuses a stopped crawl unless `resume`, a crawl of
    /// another start URL, and a resume of a crawl that does not exist.
    func join(_ settings: Settings?) throws -> Joined {
        let s = settings
        let reply = try retrying("join") {
            try evaluate(Self.joinScript, keys: [key("meta"), key("frontier"), key("seen"), key("workers"),
                                                       key("done")],
                               arguments: [options.resume ? "resume" : "start", workerID, leaseMS, s?.start ?? "",
                                           String(s?.maxPages ?? 0), String(s?.maxDepth ?? 0),
                                           (s?.allowedHosts ?? []).joined(separator: " "), String(s?.delay ?? 0),
                                           s?.obeyRobots == false ? "0" : "1", String(s?.perHost ?? 0)])
        }
        let parts = reply.array?.map { $0.string ?? "" } ?? []
        let id = options.crawlID
        switch parts.first {
        case "created", "joined":
            guard parts.count == 8, let maxPages = Int(parts[2]), let maxDepth = Int(parts[3]),
                  let delay = Double(parts[5]) else {
                throw CrawlError(message: "crawl \"\(id)\" has damaged settings in Redis: \(parts)")
            }
            var settings = Settings(start: parts[1], maxPages: maxPages, maxDepth: maxDepth,
                                    allowedHosts: parts[4].split(separator: " ").map(String.init),
                                    delay: delay, obeyRobots: parts[6] != "0")
            // Crawls begun before the cap was kept have none.
            settings.perHost = Int(parts[7]) ?? 0
            return .joined(settings, created: parts[0] == "created")
        case "finished":
            return .finished
        case "missing":
            throw CrawlError(message: options.resume
                ? "there is no crawl \"\(id)\" to resume in \(options.url)"
                : "there is no crawl \"\(id)\" in \(options.url) yet: give a start URL to begin it")
        case "other":
            throw CrawlError(message: "crawl \"\(id)\" is a crawl of \(parts.count > 1 ? parts[1] : "?"), "
                             + "not of \(settings?.start ?? "?"): choose another --crawl-id")
        case "stopped":
            let queued = parts.count > 1 ? parts[1] : "?"
            let done = parts.count > 2 ? parts[2] : "?"
            throw CrawlError(message: "crawl \"\(id)\" was stopped (\(done) pages done, \(queued) queued, no process "
                             + "running it): add --resume to continue it, or --forget it first to start over")
        default:
            throw CrawlError(message: "unexpected reply to joining crawl \"\(id)\": \(reply)")
        }
    }

    /// Waits until `count` processes (this one included) are running the
    /// crawl, at most `timeout` seconds (or until `stopped()`): a start
    /// line for several processes, so that none has the site to itself
    /// for a while.
    func awaitWorkers(_ count: Int, timeout: Double, stopped: () -> Bool = { false }) throws {
        guard count > 1 else { return }
        let deadline = Hub.current.nowUpdated() + timeout
        while !stopped() {
            let live = try retrying("count processes") {
                try evaluate(Self.liveScript, keys: [key("workers")], arguments: [workerID, leaseMS]).int ?? 0
            }
            if live >= count { return }
            guard Hub.current.nowUpdated() < deadline else {
                throw CrawlError(message: "only \(live) of \(count) processes joined crawl \"\(options.crawlID)\" "
                                 + "within \(timeout) s")
            }
            try Green.sleep(0.02)
        }
    }

    // MARK: The crawl's steps

    /// Claims up to `count` URLs, each leased to this process.
    func claim(_ count: Int) throws -> Claim {
        let reply = try retrying("claim") {
            try evaluate(Self.claimScript,
                               keys: [key("frontier"), key("leases"), key("owners"), key("done"), key("workers"),
                                      key("meta")],
                               arguments: [workerID, String(max(1, count)), leaseMS])
        }
        guard let parts = reply.array, let tag = parts.first?.string else {
            throw CrawlError(message: "unexpected reply to a claim: \(reply)")
        }
        switch tag {
        case "ok":
            return .entries(parts.dropFirst().compactMap { $0.string.flatMap(Entry.init(raw:)) })
        case "wait":
            let ms = parts.count > 1 ? parts[1].int ?? 100 : 100
            return .wait(seconds: Double(max(ms, 1)) / 1000)
        case "finished":
            return .finished
        default:
            throw CrawlError(message: "unexpected reply to a claim: \(reply)")
        }
    }

    /// Records a fetched URL and queues its links (those not seen, while
    /// the crawl has room). Returns false when another process recorded
    /// the URL already (this one's lease had expired and was reclaimed).
    func complete(_ entry: Entry, failed: Bool, links: [String], maxPages: Int) throws -> Bool {
        let reply = try retrying("record \(entry.url)") {
            try evaluate(Self.completeScript,
                               keys: [key("done"), key("failed"), key("leases"), key("owners"), key("seen"),
                                      key("frontier"), key("meta"), key("pages_by")],
                               arguments: [workerID, entry.raw, entry.url, failed ? "1" : "0",
                                           String(entry.depth + 1), String(maxPages)] + links)
        }
        return reply.int == 1
    }

    /// Extends the leases this process still holds (and its heartbeat).
    /// Returns how many it had lost (expired and reclaimed meanwhile).
    @discardableResult
    func renew(_ entries: [Entry]) throws -> Int {
        try retrying("renew leases") {
            try evaluate(Self.renewScript, keys: [key("leases"), key("owners"), key("workers"), key("meta")],
                               arguments: [workerID, leaseMS] + entries.map(\.raw)).int ?? 0
        }
    }

    /// Lets go of leases this process holds on entries it has recorded
    /// already (a claim can hand back an entry whose record was on its way).
    func dropLeases(_ entries: [Entry]) throws {
        guard !entries.isEmpty else { return }
        _ = try retrying("drop leases") {
            try redis.evaluate(Self.dropScript, keys: [key("leases"), key("owners")],
                               arguments: [workerID] + entries.map(\.raw))
        }
    }

    /// Gives claimed entries back (to the head of the frontier) and leaves
    /// the crawl: a stopped process's URLs are taken at once by the
    /// others, or by `--resume`, without waiting for leases to expire.
    func leave(releasing entries: [Entry]) throws {
        _ = try retrying("release leases") {
            try redis.evaluate(Self.leaveScript, keys: [key("leases"), key("owners"), key("frontier"), key("workers")],
                               arguments: [workerID] + entries.map(\.raw))
        }
    }

    /// Seconds to wait before the next request to `origin`, a slot taken
    /// in Redis: every process of the crawl keeps one `delay` between
    /// requests to a host.
    func politenessWait(origin: String, delay: Double) throws -> Double {
        let ms = try retrying("politeness of \(origin)") {
            try evaluate(Self.politeScript, keys: [key("polite")],
                               arguments: [origin, String(Int(delay * 1000))]).int ?? 0
        }
        return Double(ms) / 1000
    }

    /// Takes one of `origin`'s `cap` connection slots, counted over every
    /// process of the crawl, waiting (cooperatively) while all are taken;
    /// returns the slot's token for `releaseConnection`. A slot lapses
    /// after `hold` seconds, so one a dead process held comes back.
    func acquireConnection(origin: String, cap: Int, hold: Double) throws -> String {
        connectionTokens += 1
        let token = "\(workerID) \(connectionTokens)"
        var pause = 0.002
        while true {
            let taken = try retrying("connection slot for \(origin)") {
                try evaluate(Self.connectionScript, keys: [key("conns:" + origin), key("conn_origins")],
                                   arguments: [origin, String(cap), token, String(Int(hold * 1000))]).int ?? 0
            }
            if taken == 1 { return token }
            // No way to block on a zset: look again soon, less often the
            // longer the host stays full.
            try Green.sleep(pause)
            pause = min(pause * 2, 0.05)
        }
    }

    /// Gives a slot of `acquireConnection` back.
    func releaseConnection(origin: String, token: String) throws {
        _ = try retrying("connection slot for \(origin)") {
            try redis.send("ZREM", key("conns:" + origin), token)
        }
    }

    /// The robots.txt another process stored for `origin` ("" for none),
    /// or nil.
    func storedRobots(origin: String) throws -> String? {
        try retrying("robots.txt of \(origin)") { try redis.send("HGET", key("robots"), origin).string }
    }

    /// Stores `origin`'s robots.txt unless another process did first;
    /// returns the text stored (the first process's).
    func storeRobots(origin: String, text: String) throws -> String {
        try retrying("robots.txt of \(origin)") {
            let replies = try redis.pipeline([["HSETNX", key("robots"), origin, text], ["HGET", key("robots"), origin]])
            return replies[1].string ?? text
        }
    }

    /// The whole crawl as Redis has it.
    public func report() throws -> CrawlReport {
        let replies = try retrying("report") {
            try redis.pipeline([["HGETALL", key("meta")], ["HLEN", key("done")], ["SCARD", key("failed")],
                                ["HGETALL", key("pages_by")], ["LLEN", key("frontier")], ["ZCARD", key("leases")]])
        }
        for r in replies { if case .error(let e) = r { throw RedisError(command: "report", kind: .reply(e)) } }
        // HGETALL's field-value pairs, flat (the client speaks RESP2).
        func pairs(_ v: RedisValue) -> [(String, String)] {
            let a = v.array?.map { $0.string ?? "" } ?? []
            return stride(from: 0, to: a.count - 1, by: 2).map { (a[$0], a[$0 + 1]) }
        }
        let meta = Dictionary(pairs(replies[0]), uniquingKeysWith: { a, _ in a })
        guard !meta.isEmpty else {
            throw CrawlError(message: "there is no crawl \"\(options.crawlID)\" in \(options.url)")
        }
        let byWorker = pairs(replies[3]).map { ($0.0, Int($0.1) ?? 0) }.sorted { $0.0 < $1.0 }
        let first = Double(meta["first_claim_ms"] ?? "").map { $0 / 1000 }
        let finished = Double(meta["finished_ms"] ?? "").map { $0 / 1000 }
        return CrawlReport(crawlID: options.crawlID, start: meta["start"] ?? "", finished: meta["status"] == "finished",
                           pages: replies[1].int ?? 0, errors: replies[2].int ?? 0, queued: replies[4].int ?? 0,
                           leased: replies[5].int ?? 0, pagesByProcess: byWorker,
                           seconds: first.flatMap { f in finished.map { $0 - f } },
                           reclaimed: Int(meta["reclaimed"] ?? "") ?? 0, refetched: Int(meta["refetched"] ?? "") ?? 0)
    }

    /// Deletes every key of the crawl.
    public func forget() throws {
        let origins = try retrying("forget") { try redis.send("SMEMBERS", key("conn_origins")) }.array?
            .compactMap(\.string) ?? []
        let names = ["meta", "frontier", "seen", "leases", "owners", "done", "failed", "workers", "pages_by", "polite",
                     "robots", "conn_origins"] + origins.map { "conns:" + $0 }
        _ = try retrying("forget") { try redis.send(["DEL"] + names.map(key)) }
    }

    /// Runs `body`, trying again while Redis cannot be reached (a restart,
    /// a network cut) or answers that it cannot serve yet (loading its
    /// data after a restart, busy, a replica during a failover), for about
    /// `options.patience` seconds. Every step is safe to run again after
    /// its reply was lost: a claim leaves leases no one renews (they
    /// expire and go back), a record finds the URL recorded by this
    /// process and changes nothing, a renewal or a release is the same
    /// twice. (A politeness slot taken twice delays that host's next
    /// request by one more slot.)
    private func retrying<T>(_ what: String, _ body: () throws -> T) throws -> T {
        let deadline = Hub.current.nowUpdated() + options.patience
        var pause = 0.05
        while true {
            do {
                return try body()
            } catch let e as RedisError {
                switch e.kind {
                case .reply(let r) where r.hasPrefix("CRAWLGONE"):
                    throw CrawlError(message: "crawl \"\(options.crawlID)\" is gone from \(options.url) (deleted, "
                                     + "flushed, or the server restarted without persistence): its state is lost")
                case .reply(let r) where !Self.transientReplies.contains(where: { r.hasPrefix($0) }):
                    throw e
                case .protocolViolation:
                    throw e
                case .connection, .timedOut, .reply:
                    guard Hub.current.nowUpdated() < deadline else {
                        throw CrawlError(message: "Redis at \(options.url) unusable for \(options.patience) s "
                                         + "(\(what)): \(e)")
                    }
                    retries += 1
                    try Green.sleep(pause)
                    pause = min(pause * 2, 1)
                }
            }
        }
    }

    /// Error replies that mean "not now" rather than "no".
    private static let transientReplies = ["LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN"]
}
