// Unsafe parts: the hub is borrowed from the thread-local slot (invariant
// 3 in Hub.swift).
import CGreenContext

/// The blocked-hub monitor, on by default: a watchdog thread notices a
/// greenlet that has held its hub longer than `threshold` without
/// switching (a busy loop, or a call that blocks the OS thread, such as
/// `sleep` from C) and reports it once per incident on standard error
/// (or, when the program uses swift-log, as a `warning` of the
/// `swift-green` logger: see `GreenDiagnostics`), naming the greenlet,
/// with a backtrace taken on the blocked thread.
/// Every other greenlet of that hub is stalled meanwhile; the report says
/// where. gevent has such a monitor, off by default.
///
/// `GREEN_MONITOR_MS` sets the threshold from the environment (0 turns
/// the monitor off). The cost on the switch path is two plain stores.
/// A thread running on the CPU gets a signal (SIGURG) whose handler takes
/// the backtrace; a thread waiting in the kernel is not signalled (that
/// would cut its call short with EINTR): the report names its system call
/// instead.
public enum HubMonitor {
    /// Seconds a greenlet may hold its hub; 0 turns the monitor off.
    public static var threshold: Double {
        get { green_monitor_threshold() }
        set { green_monitor_set_threshold(newValue) }
    }

    /// Whether reports are emitted, to standard error or the logger (they
    /// are always counted and the last is kept).
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

extension Hub {
    /// Whether the calling thread runs a spawned greenlet (not a thread's
    /// main greenlet), without creating a hub for a thread that has none.
    /// For code that must know whether waiting may park (patch mode).
    public static var isInSpawnedGreenlet: Bool {
        guard let p = green_hub_get() else { return false }
        return Unmanaged<Hub>.fromOpaque(p)._withUnsafeGuaranteedRef { $0.current.parentID != 0 }
    }

    /// Makes the interrupt (kill or timeout) the current greenlet last
    /// received pending again, to be thrown at its next blocking call: for
    /// code that caught it where it could not be thrown (a C call that
    /// returns EINTR instead).
    public static func rearmInterrupt() {
        withCurrent { $0.rearmLastInterrupt($0.current) }
    }
}
