import Green

/// One page's link extraction while its body arrives: on the hub, or on
/// the crawl's parse threads. There, bytes go over in batches of at least
/// `batchBytes` (a hand-over costs a thread wake-up each way), and the
/// greenlet fetching the page waits for each batch while the hub runs the
/// other greenlets.
final class PageParse {
    /// The parser, handed from thread to thread. `@unchecked Sendable`:
    /// each `ThreadPool.run` is waited for before the next starts, so one
    /// thread at a time touches it, and the pool's queue orders each run
    /// after the last.
    private final class Handle: @unchecked Sendable {
        let parser: HTMLLinkParser
        init(_ parser: HTMLLinkParser) { self.parser = parser }
    }

    static let batchBytes = 128 * 1024

    private let handle: Handle
    private let parsers: ThreadPool?
    private var batch: [UInt8] = []
    /// CPU seconds the parsing took, wherever it ran.
    private(set) var cpuSeconds = 0.0

    init(_ parser: HTMLLinkParser, parsers: ThreadPool?) {
        handle = Handle(parser)
        self.parsers = parsers
    }

    func feed(_ bytes: UnsafeRawBufferPointer) throws {
        guard let parsers else {
            let before = threadCPUSeconds()
            handle.parser.feed(bytes)
            cpuSeconds += threadCPUSeconds() - before
            return
        }
        batch.append(contentsOf: bytes)
        guard batch.count >= PageParse.batchBytes else { return }
        let bytes = batch
        batch = []
        let handle = self.handle
        cpuSeconds += try parsers.run {
            let before = threadCPUSeconds()
            handle.parser.feed(bytes)
            return threadCPUSeconds() - before
        }
    }

    /// The page's links (see `HTMLLinkParser.finish`).
    func finish(truncated: Bool) throws -> [String] {
        guard let parsers else {
            let before = threadCPUSeconds()
            defer { cpuSeconds += threadCPUSeconds() - before }
            return try handle.parser.finish(truncated: truncated)
        }
        let bytes = batch
        batch = []
        let handle = self.handle
        let (found, cpu): (Result<[String], LinkExtractionError>, Double) = try parsers.run {
            let before = threadCPUSeconds()
            let found: Result<[String], LinkExtractionError>
            do {
                found = .success(try bytes.withUnsafeBytes { try handle.parser.finish(last: $0, truncated: truncated) })
            } catch let e as LinkExtractionError {
                found = .failure(e)
            } catch {
                found = .failure(LinkExtractionError(url: "", bytesParsed: 0, reason: "\(error)", links: []))
            }
            return (found, threadCPUSeconds() - before)
        }
        cpuSeconds += cpu
        return try found.get()
    }
}
