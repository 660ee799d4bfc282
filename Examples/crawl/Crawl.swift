// crawl: the web crawler on greenlets, the program most users run first.
//
//   crawl URL [--concurrency N] [--max-pages N] [--max-depth N] [--allow-host H ...]
//             [--include REGEX ...] [--exclude REGEX ...] [--user-agent UA] [--header 'K: V' ...]
//             [--per-host N] [--delay S] [--timeout S] [--retries N] [--max-bytes N]
//             [--robots/--no-robots] [--follow-nofollow] [--sitemaps] [--warc FILE.warc.gz]
//             [--parse-threads N] [--output FILE.jsonl] [--backend greenlets|threads|processes] [--demo]
//
//   crawl [URL] --frontier redis://HOST:PORT/DB --crawl-id NAME [--resume] [--lease S]
//             [--await-processes N] [--report] [--forget]
//   crawl --serve-demo [--listen HOST:PORT] [--demo-pages N] [--demo-page-bytes N]
//
// One JSON line per fetched URL (url, status, content_type, bytes, depth,
// links, ms, error), to --output or stdout; a live progress bar on a
// terminal (stderr); a summary line at the end. `--demo` serves a
// generated site on loopback and crawls it: no network needed. With
// `--frontier`, the crawl is shared through Redis by every process given
// the same crawl id (see RedisFrontier); `--serve-demo` serves the demo
// site alone, for such crawls.
import ArgumentParser
import Foundation
import Glibc
import Green
import GreenCompare
import GreenCrawl
import GreenCrawlModels

@main
enum Entry {
    static func main() {
        // With --backend processes, this program is also the worker.
        ProcessWorker.serveIfWorker(jobs: ModelCrawler.jobs)
        Crawl.main()
    }
}

struct Crawl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crawl", abstract: "Crawl a site on greenlets, politely, and write one JSON line per page.")

    @Argument(help: "Where to start (omit with --demo).")
    var url: String?

    @Option(help: "Pages fetched at once.")
    var concurrency = 100

    @Option(help: "Most URLs to fetch.")
    var maxPages = 10_000

    @Option(help: "Most link hops from the start.")
    var maxDepth = 1_000

    @Option(help: "Hosts links may lead to (default: the start URL's host).")
    var allowHost: [String] = []

    @Option(help: "Connections per host.")
    var perHost = 100

    @Option(help: "Seconds between requests to one host.")
    var delay = 0.0

    @Option(help: "Seconds for a connect or a read.")
    var timeout = 5.0

    @Flag(inversion: .prefixedNo, help: "Obey robots.txt.")
    var robots = true

    @Option(help: "OS threads that parse pages beside the hub (0: on the hub's thread; default: one per core, none with --demo, whose site serves from this process).")
    var parseThreads: Int?

    @Option(help: ArgumentHelp("Follow only URLs matching this POSIX extended regular expression (repeatable: any one).", valueName: "regex"))
    var include: [String] = []

    @Option(help: ArgumentHelp("Do not follow URLs matching this regular expression (repeatable).", valueName: "regex"))
    var exclude: [String] = []

    @Option(help: "The User-Agent sent, and the one robots.txt rules are chosen for.")
    var userAgent = "swift-green-crawler/0.1"

    @Option(help: ArgumentHelp("A header sent with every request (repeatable).", valueName: "Name: value"))
    var header: [String] = []

    @Option(help: "Tries after the first for connection failures, 429 and 5xx answers (exponential backoff with jitter; Retry-After obeyed).")
    var retries = 2

    @Option(help: "Read at most this many bytes of a page (decoded): the transfer is cut and its line says truncated.")
    var maxBytes: Int?

    @Flag(help: "Also follow links marked rel=nofollow and links of pages whose robots meta tag says nofollow.")
    var followNofollow = false

    @Flag(help: "Seed the crawl with the pages of the site's sitemaps (robots.txt Sitemap: lines and /sitemap.xml).")
    var sitemaps = false

    @Option(help: ArgumentHelp("Write every request and response to this WARC/1.1 file (gzip per record, as wget --warc-file).", valueName: "FILE.warc.gz"))
    var warc: String?

    @Option(help: "For https:// sites: trust the certificates in this PEM file instead of the system's.")
    var caFile: String?

    @Flag(help: "For https:// sites: check no certificate at all (throwaway test certificates only).")
    var insecure = false

    @Option(help: "Write the JSON lines here instead of stdout.")
    var output: String?

    @Option(help: "greenlets (one hub), threads or processes (a pool of --concurrency workers through the adapter layer, level by level).")
    var backend = "greenlets"

    @Flag(help: "Serve a generated demo site on loopback and crawl it.")
    var demo = false

    @Option(help: "Pages of the demo site.")
    var demoPages = 3_000

    @Option(help: "Seconds of latency the demo site adds to every response.")
    var demoLatency = 0.0

    @Option(help: "Seconds the demo site's slow page takes (default: the timeout + 1, so that it fails).")
    var demoSlow: Double?

    @Option(help: "Bytes of text markup added to every demo page (pages that cost more to parse than to serve).")
    var demoPageBytes = 0

    @Flag(help: "Only serve the demo site (on --listen) until SIGINT or SIGTERM, for crawls in other processes.")
    var serveDemo = false

    @Option(help: "HOST:PORT --serve-demo listens on (port 0: any free one; the URL is printed).")
    var listen = "127.0.0.1:0"

    @Option(help: "Share the crawl through Redis (redis://[[user]:password@]host[:port][/db]): the frontier, the seen-set, leases, politeness and robots.txt live there, and every process given the same --crawl-id works on the one crawl.")
    var frontier: String?

    @Option(help: "The shared crawl's name in Redis (with --frontier).")
    var crawlId = "crawl"

    @Flag(help: "Continue a stopped shared crawl (no process left running it).")
    var resume = false

    @Option(help: "Seconds a claimed URL stays this process's without renewal (with --frontier): a process that dies loses its URLs to the others after this long.")
    var lease = 10.0

    @Option(help: "Wait until this many processes have joined the shared crawl before fetching, at most 60 s (with --frontier).")
    var awaitProcesses = 1

    @Flag(help: "Print the shared crawl's combined summary from Redis, and exit (with --frontier).")
    var report = false

    @Flag(help: "Delete the shared crawl's state from Redis, and exit (with --frontier).")
    var forget = false

    func validate() throws {
        guard ModelKind(rawValue: backend) != nil else {
            throw ValidationError("--backend \(backend): one of greenlets, threads, processes")
        }
        guard demo || serveDemo || url != nil || frontier != nil else { throw ValidationError("give a URL, or --demo") }
        if frontier != nil {
            guard !demo else {
                throw ValidationError("--demo serves its own site to one process: with --frontier, serve the site once with --serve-demo and give its URL to every process")
            }
            guard backend == "greenlets" else { throw ValidationError("--frontier crawls on greenlets: drop --backend") }
            guard lease >= 0.3, awaitProcesses >= 1 else { throw ValidationError("--lease must be at least 0.3 s, --await-processes at least 1") }
        } else if resume || report || forget {
            throw ValidationError("--resume, --report and --forget are for shared crawls: give --frontier redis://...")
        }
        guard concurrency >= 1, maxPages >= 1, perHost >= 1, timeout > 0, (parseThreads ?? 0) >= 0, retries >= 0,
              (maxBytes ?? 1) >= 1 else {
            throw ValidationError("--concurrency, --max-pages, --per-host and --max-bytes must be at least 1, --timeout positive, --parse-threads and --retries 0 or more")
        }
        if (warc != nil || sitemaps) && backend != "greenlets" {
            throw ValidationError("--warc and --sitemaps work on the greenlets backend: drop --backend")
        }
        if sitemaps && frontier != nil {
            throw ValidationError("--sitemaps seeds a crawl in one process: a shared crawl (--frontier) takes no sitemaps yet")
        }
    }

    mutating func run() throws {
        if serveDemo { return try serveDemoSite() }
        if frontier != nil { return try crawlShared() }
        var site: DemoSite?
        let start: URL
        if demo {
            let s = DemoSite(pages: demoPages, latency: demoLatency, slowSeconds: demoSlow ?? timeout + 1)
            start = try s.start(ownThread: true)
            site = s
        } else {
            guard let u = URL(string: url!), u.scheme != nil else { throw ValidationError("not a URL: \(url!)") }
            start = u
        }
        defer { site?.stop() }

        let options = crawlerOptions
        let crawler = try makeCrawler(options)
        let model = ModelKind(rawValue: backend).flatMap { $0 == .greenlets ? nil : Model($0) }

        let out = try openOutput()
        defer { if output != nil { fclose(out) } else { fflush(out) } }
        let progress = Progress(enabled: isatty(2) != 0)
        // kill -QUIT <pid> (or Ctrl-\) prints what every greenlet is doing.
        let dump = GreenletDump.installSignalHandler()
        defer { dump.cancel() }
        let treeBefore = treeCPUSeconds()
        var done = 0
        var failed = 0
        let write: (CrawlRecord) throws -> Void = { record in
            fputs(record.jsonLine + "\n", out)
            if model == nil {
                progress.update(done: crawler.done, errors: crawler.errors, queued: crawler.queued, inFlight: crawler.inFlight)
            } else {
                done += 1
                if record.error != nil || (record.status ?? 0) >= 400 { failed += 1 }
                progress.update(done: done, errors: failed, queued: nil, inFlight: nil)
            }
        }
        let summary = try model.map { try ModelCrawler.crawl(start, options: options, model: $0, record: write) }
            ?? crawler.crawl(start, record: write)
        progress.finish()
        var line = String(format: "crawled %d pages, %d errors, %.3f s, %.0f pages/s",
                          summary.pages, summary.errors, summary.seconds, summary.pagesPerSecond)
        if summary.retries > 0 { line += ", \(summary.retries) retries" }
        if summary.truncated > 0 { line += ", \(summary.truncated) cut at --max-bytes" }
        if let site {
            let expected = site.expected
            line += " (demo site: expected \(expected.urls) URLs with \(expected.errors) planted errors)"
        }
        writeSummary(line, toStdout: output != nil)
        if model == nil {
            // Where the time went, and what bounded the run.
            writeSummary(summary.timeLine + "; " + summary.boundLine, toStdout: output != nil)
        } else {
            // Threads or processes: their CPU (this process's and its reaped
            // workers'), spread over the cores.
            let cores = Double(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
            let busy = (treeCPUSeconds() - treeBefore) / cores / max(summary.seconds, 1e-9)
            writeSummary(String(format: "the cores were busy %.0f%% of the run", 100 * busy), toStdout: output != nil)
        }
        if demo, let site {
            let expected = site.expected
            // The planted errors are the demo's; anything else is a failure.
            let complete = summary.pages == min(expected.urls, maxPages)
            let plantedErrors = expected.errors - ((demoSlow ?? timeout + 1) < timeout ? 1 : 0)
            if !complete || summary.errors != plantedErrors { throw ExitCode(2) }
            return
        }
        if summary.errors > 0 { throw ExitCode(2) }
    }

    private func makeCrawler(_ options: Crawler.Options) throws -> Crawler {
        do { return try Crawler(options: options) } catch let e as CrawlError { throw ValidationError(e.message) }
    }

    private var crawlerOptions: Crawler.Options {
        var options = Crawler.Options()
        options.concurrency = concurrency
        options.maxPages = maxPages
        options.maxDepth = maxDepth
        options.allowedHosts = allowHost
        options.perHost = perHost
        options.delay = delay
        options.timeout = timeout
        options.obeyRobots = robots
        options.parseThreads = parseThreadCount
        options.caFile = caFile
        options.insecureTLS = insecure
        options.include = include
        options.exclude = exclude
        options.userAgent = userAgent
        options.headers = header
        options.retries = retries
        options.maxBytes = maxBytes
        options.followNofollow = followNofollow
        options.sitemaps = sitemaps
        options.warcPath = warc
        return options
    }

    /// The --output file, or stdout.
    private func openOutput() throws -> UnsafeMutablePointer<FILE> {
        guard let output else { return fdopen(1, "w") }
        guard let f = fopen(output, "w") else {
            throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))")
        }
        return f
    }

    /// --serve-demo: the demo site alone, until SIGINT or SIGTERM.
    private func serveDemoSite() throws {
        let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 2, let port = UInt16(parts.last!) else { throw ValidationError("--listen HOST:PORT, not \(listen)") }
        let host = parts.dropLast().joined(separator: ":").trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let slow = demoSlow ?? timeout + 1
        let site = DemoSite(pages: demoPages, latency: demoLatency, slowSeconds: slow, pageBytes: demoPageBytes)
        let root = try site.start(on: SocketAddress(ip: host, port: port))
        defer { site.stop() }
        let expected = site.expected
        print("demo site: \(root) (\(demoPages) pages; a complete crawl records \(expected.urls) URLs with "
              + "\(expected.errors) planted errors when its timeout is under \(slow) s)")
        fflush(nil)
        let stop = Event()
        let handlers = [SIGINT, SIGTERM].map { SignalHandler($0) { stop.set() } }
        defer { handlers.forEach { $0.cancel() } }
        try stop.wait()
    }

    /// --frontier: this process's part of a crawl shared through Redis.
    private func crawlShared() throws {
        var fo = RedisFrontier.Options(url: frontier!, crawlID: crawlId)
        fo.lease = lease
        fo.resume = resume
        let shared: RedisFrontier
        do { shared = try RedisFrontier(options: fo) } catch { throw ValidationError("\(error)") }
        if forget {
            try shared.forget()
            print("forgot crawl \"\(crawlId)\"")
            return
        }
        if report {
            let r = try shared.report()
            print(r.line)
            if !r.finished { throw ExitCode(3) }
            return
        }
        var start: URL?
        if let url {
            guard let u = URL(string: url), u.scheme != nil else { throw ValidationError("not a URL: \(url)") }
            start = u
        }
        let crawler = try makeCrawler(crawlerOptions)
        let out = try openOutput()
        // Line by line: a process killed mid-crawl leaves whole lines.
        setvbuf(out, nil, _IOLBF, 0)
        defer { if output != nil { fclose(out) } else { fflush(out) } }
        let progress = Progress(enabled: isatty(2) != 0)
        // SIGINT or SIGTERM: stop claiming, finish the pages in flight, give
        // the rest back (a second signal ends the process at once).
        var stopping = false
        let handlers = [SIGINT, SIGTERM].map { signal in
            SignalHandler(signal) {
                if stopping { _exit(130) }
                stopping = true
                printToStderr("stopping: finishing the pages in flight and giving the rest back (again to quit at once)")
                crawler.stop()
            }
        }
        defer { handlers.forEach { $0.cancel() } }
        let dump = GreenletDump.installSignalHandler()
        defer { dump.cancel() }
        let summary = try crawler.crawl(sharing: shared, start: start, awaitProcesses: awaitProcesses) { record in
            fputs(record.jsonLine + "\n", out)
            progress.update(done: crawler.done, errors: crawler.errors, queued: crawler.queued, inFlight: crawler.inFlight)
        }
        progress.finish()
        let local = summary.local
        var line = String(format: "this process: %d pages, %d errors, %.3f s, %.0f pages/s",
                          local.pages, local.errors, local.seconds, local.pagesPerSecond)
        if summary.refetched > 0 { line += ", \(summary.refetched) fetched again after its lease expired" }
        if summary.redisConnectionsLost > 0 || summary.redisRetries > 0 {
            line += ", Redis connections lost \(summary.redisConnectionsLost), operations retried \(summary.redisRetries)"
        }
        line += summary.stopped ? " (stopped: --resume continues the crawl)" : ""
        line += "; " + summary.report.line
        writeSummary(line, toStdout: output != nil)
        if summary.stopped { throw ExitCode(3) }
        guard summary.report.finished else {
            printToStderr("the crawl ended unfinished")
            throw ExitCode(1)
        }
        if summary.report.errors > 0 { throw ExitCode(2) }
    }

    /// Parse threads: as asked, or one per core (none with --demo, whose
    /// site serves from this process). Measured on python3-doc from nginx
    /// on 2 cores (7 interleaved runs each, median wall): 0 threads 1.97 s,
    /// 1 1.56 s, 2 1.33-1.37 s, 3 1.09-1.34 s, 4 1.28 s, 6 1.20 s; the
    /// hub waits most of the time, so its core parses too.
    private var parseThreadCount: Int {
        parseThreads ?? (demo ? 0 : max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    private func writeSummary(_ line: String, toStdout: Bool) {
        if toStdout { print(line) } else { printToStderr(line) }
    }
}

func stderrStream() -> UnsafeMutablePointer<FILE> { fdopen(2, "w") }

/// A line on stderr, written at once.
func printToStderr(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var at = 0
    while at < bytes.count {
        let n = bytes[at...].withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
        at += n
    }
}

/// A one-line progress bar on stderr, redrawn at most 10 times a second;
/// nothing at all when stderr is not a terminal.
final class Progress {
    let enabled: Bool
    private var last = 0.0
    private let err = stderrStream()

    init(enabled: Bool) { self.enabled = enabled }

    private let started = Hub.current.nowUpdated()

    /// Redraws the bar; `queued` and `inFlight` are nil where the backend
    /// does not know them (a pool of threads or processes, level by level).
    func update(done: Int, errors: Int, queued: Int?, inFlight: Int?) {
        guard enabled else { return }
        let now = Hub.current.nowUpdated()
        guard now - last >= 0.1 else { return }
        last = now
        var line = "\r\u{1B}[Kdone \(done)"
        if let queued { line += "  queued \(queued)" }
        if let inFlight { line += "  in flight \(inFlight)" }
        line += "  errors \(errors)" + String(format: "  %.0f pages/s", Double(done) / max(now - started, 1e-3))
        fputs(line, err)
        fflush(err)
    }

    func finish() {
        guard enabled else { return }
        fputs("\r\u{1B}[K", err)
        fflush(err)
    }
}

/// CPU seconds of this process (every thread) and of its reaped children.
func treeCPUSeconds() -> Double {
    var total = 0.0
    for who in [RUSAGE_SELF.rawValue, RUSAGE_CHILDREN.rawValue] {
        var u = rusage()
        getrusage(who, &u)
        total += Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
    return total
}
