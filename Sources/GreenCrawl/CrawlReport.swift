import Foundation
import Glibc
import Green
import GreenRedis

/// A crawl shared in Redis, as a whole: every process's pages together.
public struct CrawlReport: Sendable {
    public let crawlID: String
    public let start: String
    public let finished: Bool
    public let pages: Int
    public let errors: Int
    /// URLs waiting, and URLs claimed by a process and not yet recorded.
    public let queued: Int
    public let leased: Int
    /// Pages recorded by each process that took part.
    public let pagesByProcess: [(String, Int)]
    /// From the first claim to the end (nil until finished).
    public let seconds: Double?
    /// Leases that expired (their process died or stalled) and went back.
    public let reclaimed: Int
    /// Pages fetched by a process after another had recorded them (its
    /// lease had expired).
    public let refetched: Int

    public var pagesPerSecond: Double? { seconds.map { $0 > 0 ? Double(pages) / $0 : 0 } }

    /// One line: "crawl "ID" finished: ...".
    public var line: String {
        var s = "crawl \"\(crawlID)\" " + (finished ? "finished" : "unfinished (\(queued) queued, \(leased) leased)")
        s += ": \(pages) pages by \(pagesByProcess.count) process\(pagesByProcess.count == 1 ? "" : "es")"
        if pagesByProcess.count > 1 { s += " (" + pagesByProcess.map { String($0.1) }.joined(separator: " + ") + ")" }
        s += ", \(errors) errors"
        if let seconds, let rate = pagesPerSecond {
            s += String(format: ", %.3f s, %.0f pages/s combined", seconds, rate)
        }
        s += "; leases reclaimed \(reclaimed), pages fetched again \(refetched)"
        return s
    }
}
