// Where the runtime's diagnostics go: one place, for every report the
// runtime makes on its own (unobserved greenlet errors, blocked-hub
// reports, compact image sizes, a bad GREEN_STACK_MODE, patch mode).
//
// ROUTING
//
// A diagnostic goes to a swift-log `Logger` labelled "swift-green" when
// there is one to go to, else it is written to stderr as the plain line
// the runtime has always printed (or not at all, for the notices that
// had no line before). There is one when
//
//   * the program set `GreenDiagnostics.logger` (tests, or a program that
//     wants the runtime's reports in a logger of its own), or
//   * the program bootstrapped swift-log (`LoggingSystem.bootstrap`).
//
// swift-log does not say whether it was bootstrapped (its flag is
// internal). Without a bootstrap, `Logger(label:)` gets swift-log's own
// default handler, a `StreamLogHandler` on stderr, whose timestamped
// format would change every line the runtime prints today; so a logger
// whose handler is a `StreamLogHandler` counts as "not bootstrapped" and
// the plain lines are kept. The one program this misjudges is one that
// bootstraps swift-log with `StreamLogHandler` itself: it gets the plain
// lines; setting `GreenDiagnostics.logger = Logger(label: "swift-green")`
// sends them through its handler. The check runs per diagnostic (they
// are rare), so a bootstrap made after the runtime started counts.
//
// Some reports cannot go through swift-log where they happen and keep
// writing with write(2): a stack overflow (a SIGSEGV handler, overflow.c)
// and anything inside a context switch. The compact image report is made
// inside a switch: without a logger the switch writes it as before; with
// one, it is queued there and logged by the hub afterwards (see
// CompactImageReport.swift). The blocked-hub report is made on the
// monitor's own thread, in C, and handed to Swift through a sink (see
// BlockedHubReport.swift). The greenlet dump's signal handler writes the
// dump itself: it is output the user asked for, not a diagnostic.
import CGreenContext
import Glibc
import Logging

/// Where the runtime's diagnostics go: unobserved greenlet errors
/// (level `error`), blocked-hub reports and compact image sizes
/// (`warning`), a bad `GREEN_STACK_MODE` (`warning`), patch mode turned
/// on (`notice`).
///
/// By default they are plain lines on standard error, exactly as the
/// runtime has always printed them. A program that bootstraps swift-log
/// (`LoggingSystem.bootstrap`) gets them in its handler instead, from a
/// `Logger` labelled `swift-green`, with the details as metadata
/// (`greenlet`, `hub`, `error`, ...). `logger` overrides both.
/// (swift-log's own `StreamLogHandler` as the bootstrapped handler cannot
/// be told from no bootstrap at all: such a program gets the plain lines
/// unless it sets `logger`.) Any thread; nothing here blocks a greenlet.
public enum GreenDiagnostics {
    /// The label of the runtime's logger.
    public static let label = "swift-green"

    private static let injected = Locked<Logger?>(nil)

    /// A logger for the runtime's diagnostics, overriding the choice
    /// above; `nil` (the default) restores it. Any thread.
    public static var logger: Logger? {
        get { injected.withLock { $0 } }
        set {
            injected.withLock { $0 = newValue }
            refreshCompactReportRoute()
        }
    }

    /// Tells context switches whether to queue their compact image
    /// reports for the hub to log (there is a logger now) or to write
    /// them as they always have. Checked when a hub makes its compact run
    /// stack, when `logger` is set and after the hub logged a report: a
    /// program that bootstraps swift-log after its hubs ran compact
    /// greenlets gets the plain lines for those hubs until then.
    static func refreshCompactReportRoute() {
        green_compact_set_deferred_reports(currentLogger != nil ? 1 : 0)
    }

    /// The logger a diagnostic goes to now, or nil for the plain lines.
    static var currentLogger: Logger? {
        if let logger { return logger }
        let logger = Logger(label: label)
        return logger.handler is StreamLogHandler ? nil : logger
    }

    /// Emits one diagnostic: through the current logger if there is one,
    /// else by `plain` (today's output; nothing for a notice that had
    /// none). Any thread, outside a context switch and signal handlers.
    static func emit(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message,
                     error: (any Error)? = nil, metadata: @autoclosure () -> Logger.Metadata,
                     plain: () -> Void) {
        guard let logger = currentLogger else { return plain() }
        logger.log(level: level, message(), error: error, metadata: metadata(), source: "Green")
    }

    /// Emits a diagnostic whose plain form is `line` on stderr.
    static func emit(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message,
                     error: (any Error)? = nil, metadata: @autoclosure () -> Logger.Metadata,
                     plainLine line: @autoclosure () -> String) {
        emit(level, message(), error: error, metadata: metadata()) { writePlainLine(line()) }
    }

    /// Whether diagnostics go to a logger now (rather than plain lines):
    /// for work only a log entry needs.
    package static var isLogging: Bool { currentLogger != nil }

    /// For the runtime's other modules (GreenPatch): a diagnostic that has
    /// no plain form, logged only when there is a logger.
    package static func notice(_ message: @autoclosure () -> Logger.Message,
                               metadata: @autoclosure () -> Logger.Metadata) {
        emit(.notice, message(), metadata: metadata()) {}
    }

    /// The same at level `warning`.
    package static func warning(_ message: @autoclosure () -> Logger.Message,
                                metadata: @autoclosure () -> Logger.Metadata) {
        emit(.warning, message(), metadata: metadata()) {}
    }

    /// Writes `line` to stderr, whole.
    static func writePlainLine(_ line: String) {
        var line = line
        line.withUTF8 { _ = writeAll(fd: 2, $0) }
    }
}
