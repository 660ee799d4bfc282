import CGreenContext

/// The blocked-hub monitor, on by default: a watchdog thread notices a
/// greenlet that has held its hub longer than `threshold` without
/// switching (a busy loop, or a call that blocks the OS thread, such as
/// `sleep` from C) and reports it once per incident on standard error,
/// naming the greenlet, with a backtrace taken on the blocked thread.
/// Every other greenlet of that hub is stalled meanwhile; the report says
/// where. gevent has such a monitor, off by default.
///
/// `GREEN_MONITOR_MS` sets the threshold from the environment (0 turns
/// the monitor off). The cost on the switch path is two plain stores.
/// The backtrace is taken with a signal (SIGURG) to the blocked thread: a
/// blocking call there returns early with EINTR, once per report.
public enum HubMonitor {
    /// Seconds a greenlet may hold its hub; 0 turns the monitor off.
    public static var threshold: Double {
        get { green_monitor_threshold() }
        set { green_monitor_set_threshold(newValue) }
    }

    /// Whether reports are printed to standard error (they are always
    /// counted and the last is kept).
    public static func setPrinting(_ print: Bool) { green_monitor_set_print(print ? 1 : 0) }

    /// Reports made since the program started.
    public static var reportCount: UInt64 { green_monitor_report_count() }

    /// The last report's text ("" before the first).
    public static var lastReport: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        green_monitor_last_report(&buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
