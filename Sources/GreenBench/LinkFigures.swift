import Foundation
import GreenCrawl

/// Link extraction over a corpus of real pages: libxml2's push parser as
/// the crawler's parse threads feed it, and gumbo, the extractor it
/// replaced, on the same pages. Both give every page's links resolved and
/// normalized, so the figure is the crawler's whole per-page CPU cost
/// outside the network.
enum LinkBench {
    /// Debian's python3-doc: 530 pages, 50.7 MB (`make deps` installs it).
    static let defaultCorpus = "/usr/share/doc/python3.11/html"

    struct Corpus {
        let pages: [(url: String, bytes: [UInt8])]
        var megabytes: Double { Double(pages.reduce(0) { $0 + $1.bytes.count }) / 1e6 }
    }

    static func load(_ root: String, every: Int) throws -> Corpus {
        guard let walker = FileManager.default.enumerator(atPath: root) else {
            throw BenchError("no corpus at \(root) (make deps installs Debian's python3-doc)")
        }
        var paths: [String] = []
        for case let path as String in walker where path.hasSuffix(".html") { paths.append(path) }
        paths.sort()
        let pages = try paths.enumerated().filter { $0.offset % every == 0 }.map { _, path in
            ("http://docs.test/" + path, Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + path))))
        }
        guard !pages.isEmpty else { throw BenchError("no .html files under \(root)") }
        return Corpus(pages: pages)
    }

    /// MB/s of libxml2 over the corpus, each page fed as the crawler's
    /// parse threads get it (batches of 128 KiB, the rest with the end);
    /// `links` gets the total found.
    static func libxml2MBPerSecond(_ corpus: Corpus, links: inout Int) -> Double {
        let start = monotonicNs()
        var total = 0
        let batch = 128 * 1024
        for (url, bytes) in corpus.pages {
            let parser = HTMLLinkParser(pageURL: url, followNofollow: true)
            bytes.withUnsafeBytes { all in
                var at = 0
                while all.count - at > batch {
                    parser.feed(UnsafeRawBufferPointer(rebasing: all[at..<(at + batch)]))
                    at += batch
                }
                total += (try? parser.finish(last: UnsafeRawBufferPointer(rebasing: all[at...])))?.count ?? 0
            }
        }
        links = total
        return corpus.megabytes / (Double(monotonicNs() - start) / 1e9)
    }

    /// MB/s of gumbo over the corpus: with the crawler's bump arena, or
    /// (`arena: false`) with gumbo's own allocator, as gumbo ships.
    static func gumboMBPerSecond(_ corpus: Corpus, arena: Bool, links: inout Int) -> Double {
        let start = monotonicNs()
        var total = 0
        for (url, bytes) in corpus.pages {
            total += GumboLinkExtractor.linkStrings(in: bytes, pageURL: url, arena: arena).count
        }
        links = total
        return corpus.megabytes / (Double(monotonicNs() - start) / 1e9)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
