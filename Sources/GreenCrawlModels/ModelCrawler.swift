import Foundation
import Glibc
import GreenCompare
import GreenCrawl

/// The crawl on the adapter layer's threads or processes (`crawl
/// --backend threads|processes`): the frontier and the seen set stay in
/// the calling thread, and pages are fetched and parsed by a pool of
/// `concurrency` OS threads or worker processes, level by level
/// (breadth-first). Each worker keeps its own `Crawler` (client,
/// connections, robots.txt rules) for the crawl. The greenlets backend is
/// `Crawler` itself.
public enum ModelCrawler {
    /// One page for a worker.
    public struct Task: Codable, Sendable {
        public let crawl: String
        public let url: String
        public let depth: Int
        public let options: Crawler.Options
    }

    /// Fetches and parses one page on the worker's own `Crawler`.
    public static let fetch = Job<Task, CrawlRecord>("crawl.fetch") { task, _ in
        try WorkerCrawlers.crawler(for: task.crawl, options: task.options).fetch(task.url, depth: task.depth)
    }

    /// The jobs a crawl worker process serves.
    public static let jobs: [AnyJob] = [fetch.erased]

    /// Crawls from `start` on `model` (threads or processes), calling
    /// `record` for every fetched URL, level by level.
    public static func crawl(_ start: URL, options: Crawler.Options, model: Model,
                             record: (CrawlRecord) throws -> Void) throws -> CrawlSummary {
        guard let first = URLNormalizer.normalize(start) else {
            throw CrawlError(message: "not an http(s) URL: \(start)")
        }
        // Judges links as the workers' crawlers would (hosts, include and
        // exclude); a pattern that does not compile fails here, once.
        let judge = try Crawler(options: options)
        judge.allowed = Set((options.allowedHosts.isEmpty ? [first.host ?? ""] : options.allowedHosts).map { $0.lowercased() })
        let pool = try model.pool(size: options.concurrency)
        defer { pool.close() }
        let crawlID = "\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let began = monotonicSeconds()
        var seen: Set<String> = [first.absoluteString]
        var level = [first.absoluteString]
        var depth = 0
        var pages = 0
        var errors = 0
        while !level.isEmpty {
            var next: [String] = []
            let tasks = level.map { Task(crawl: crawlID, url: $0, depth: depth, options: options) }
            for (i, result) in pool.imap(fetch, tasks).enumerated() {
                let r: CrawlRecord
                switch result {
                case .success(let found): r = found
                case .failure(let error):
                    // The worker itself failed (a crashed process): the URL
                    // gets the error, the crawl goes on.
                    var failed = CrawlRecord(url: tasks[i].url, depth: depth)
                    failed.error = "\(error)"
                    r = failed
                }
                pages += 1
                if r.error != nil || (r.status ?? 0) >= 400 { errors += 1 }
                if depth < options.maxDepth {
                    for link in r.found where seen.count < options.maxPages {
                        guard !seen.contains(link), judge.isAllowed(link) else { continue }
                        seen.insert(link)
                        next.append(link)
                    }
                }
                try record(r)
            }
            level = next
            depth += 1
        }
        return CrawlSummary(pages: pages, errors: errors, seconds: monotonicSeconds() - began)
    }
}

/// Each worker thread's (or process's) crawler for a crawl, released when
/// the thread ends (a pthread key's destructor), with its connections.
enum WorkerCrawlers {
    final class Slot {
        var crawl = ""
        var crawler: Crawler?
    }

    private static let slots = PerThread<Slot> { Slot() }

    static func crawler(for crawl: String, options: Crawler.Options) throws -> Crawler {
        let slot = slots.value
        if slot.crawl != crawl || slot.crawler == nil {
            var o = options
            o.concurrency = 1
            o.parseThreads = 0
            slot.crawler = try Crawler(options: o)
            slot.crawl = crawl
        }
        return slot.crawler!
    }
}
