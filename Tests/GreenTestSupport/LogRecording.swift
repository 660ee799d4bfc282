import Glibc
import Green
import Logging

/// A log entry as a test handler received it.
public struct LogEntry: @unchecked Sendable {
    public let label: String
    public let level: Logger.Level
    public let message: String
    public let metadata: [String: String]
    public let error: (any Error)?
}

/// The entries a `RecordingLogHandler` received, from any thread; a test
/// can wait for them.
public final class LogEntries: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let arrived = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var entries: [LogEntry] = []

    public init() {
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        arrived.initialize(to: pthread_cond_t())
        pthread_cond_init(arrived, nil)
    }

    deinit {
        pthread_cond_destroy(arrived)
        pthread_mutex_destroy(mutex)
        arrived.deallocate()
        mutex.deallocate()
    }

    public func append(_ entry: LogEntry) {
        pthread_mutex_lock(mutex)
        entries.append(entry)
        pthread_cond_broadcast(arrived)
        pthread_mutex_unlock(mutex)
    }

    public var all: [LogEntry] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return entries
    }

    /// Blocks the thread until `count` entries are in, at most `timeout`
    /// seconds; whether they are.
    public func wait(forCount count: Int, timeout: Double) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let end = Double(deadline.tv_sec) + Double(deadline.tv_nsec) / 1e9 + timeout
        deadline.tv_sec = Int(end)
        deadline.tv_nsec = Int((end - Double(Int(end))) * 1e9)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while entries.count < count {
            if pthread_cond_timedwait(arrived, mutex, &deadline) == ETIMEDOUT { break }
        }
        return entries.count >= count
    }
}

/// A log handler that records every entry, all levels.
public struct RecordingLogHandler: LogHandler {
    public let label: String
    public let entries: LogEntries

    public init(label: String, entries: LogEntries) {
        self.label = label
        self.entries = entries
    }
    public var logLevel: Logger.Level = .trace
    public var metadata: Logger.Metadata = [:]

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        entries.append(LogEntry(label: label, level: event.level, message: "\(event.message)",
                                metadata: all.mapValues { "\($0)" }, error: event.error))
    }
}

/// A suite that looks at the runtime's diagnostics: each test runs with
/// `GreenDiagnostics.logger` recording into `entries`, removed after.
open class LogRecordingTestCase: GreenTestCase {
    public private(set) var entries = LogEntries()

    override open func setUp() {
        super.setUp()
        let entries = LogEntries()
        self.entries = entries
        GreenDiagnostics.logger = Logger(label: GreenDiagnostics.label) { RecordingLogHandler(label: $0, entries: entries) }
    }

    override open func tearDown() {
        GreenDiagnostics.logger = nil
        super.tearDown()
    }
}
