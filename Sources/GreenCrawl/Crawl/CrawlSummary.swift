/// How a crawl (or one process's part of a shared one) went.
public struct CrawlSummary: Sendable {
    public let pages: Int
    public let errors: Int
    public let seconds: Double
    /// Attempts made again (connection failures, 429, 5xx).
    public var retries = 0
    /// Pages cut at `maxBytes`.
    public var truncated = 0
    /// CPU seconds of the hub's thread: fetching (sockets, TLS, HTTP,
    /// gzip), scheduling, and parsing when there are no parse threads.
    public var hubCPUSeconds = 0.0
    /// CPU seconds spent parsing pages, wherever they parsed.
    public var parseCPUSeconds = 0.0
    public var parseThreads = 0
    /// CPU seconds of the whole process (every thread), and the cores it
    /// could use.
    public var processCPUSeconds = 0.0
    public var cores = 1
    /// The page that finished last.
    public var straggler: Straggler?

    public struct Straggler: Sendable {
        public let url: String
        /// How long it took.
        public let seconds: Double
        /// Its error, or "status N" for a status of 400 or more.
        public let error: String?
        /// Seconds it ran with no other page finishing: what the crawl
        /// waited for it alone.
        public let alone: Double

        public init(url: String, seconds: Double, error: String?, alone: Double) {
            self.url = url
            self.seconds = seconds
            self.error = error
            self.alone = alone
        }
    }

    public init(pages: Int, errors: Int, seconds: Double) {
        self.pages = pages
        self.errors = errors
        self.seconds = seconds
    }

    public var pagesPerSecond: Double { seconds > 0 ? Double(pages) / seconds : 0 }

    /// Where the time went: the hub's CPU (less its parsing), parsing,
    /// and the hub's idle time (waiting on the network, on the parse
    /// threads, or on delays).
    public var timeLine: String {
        let hubParse = parseThreads == 0 ? parseCPUSeconds : 0
        let fetch = max(0, hubCPUSeconds - hubParse)
        let idle = max(0, seconds - hubCPUSeconds)
        let parseWhere = parseThreads == 0 ? "on the hub" : "on \(parseThreads) parse thread\(parseThreads == 1 ? "" : "s")"
        return "time: fetching \(Self.format(fetch)) s CPU, parsing \(Self.format(parseCPUSeconds)) s CPU \(parseWhere), "
            + "hub idle \(Self.format(idle)) s of \(Self.format(seconds)) s"
    }

    /// What bounded the run: a straggler the crawl waited for alone, the
    /// parse threads, the hub's CPU, or waiting (on the server, or on
    /// politeness delays).
    public var boundLine: String {
        let wall = max(seconds, 1e-9)
        if let s = straggler, s.alone > 0.25 * wall, s.alone > 0.05 {
            // Errors name their URL first; it is named here already.
            let why = s.error.map { " (" + ($0.hasPrefix(s.url + ": ") ? String($0.dropFirst(s.url.count + 2)) : $0) + ")" } ?? ""
            return "bounded by one page: \(s.url) took \(Self.format(s.seconds)) s\(why), "
                + "\(Self.format(s.alone)) s of it after every other page was done (\(Int((100 * s.alone / wall).rounded()))% of the run)"
        }
        let parseLoad = parseThreads > 0 ? parseCPUSeconds / Double(parseThreads) : 0
        if parseThreads > 0 && parseLoad > 0.7 * wall && parseLoad >= hubCPUSeconds {
            return "bounded by parsing: the parse threads were busy \(Int((100 * parseLoad / wall).rounded()))% of the run"
        }
        if hubCPUSeconds > 0.7 * wall {
            return "bounded by the hub's CPU (busy \(Int((100 * hubCPUSeconds / wall).rounded()))% of the run)"
        }
        let processLoad = processCPUSeconds / Double(max(cores, 1))
        if cores > 1 && processLoad > 0.7 * wall {
            return "bounded by the machine's CPU: this process kept its \(cores) cores \(Int((100 * processLoad / wall).rounded()))% busy"
        }
        return "bounded by waiting: the hub was idle \(Int((100 * (1 - hubCPUSeconds / wall)).rounded()))% of the run "
            + "(the server's latency, politeness delays, or too little concurrency)"
    }

    static func format(_ seconds: Double) -> String {
        let hundredths = Int((seconds * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
