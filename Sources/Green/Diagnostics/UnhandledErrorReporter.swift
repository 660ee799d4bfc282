import Glibc
import Logging

/// Where errors that no one observed end up: a greenlet that failed and
/// was let go without anyone asking for its result (`get()`, `error`, a
/// scope or `joinAll` that rethrew it) is reported once, naming it.
///
/// By default the report is a diagnostic (see `GreenDiagnostics`): one
/// line on stderr, or, when the program uses swift-log, a log entry at
/// level `error` from the `swift-green` logger, with the error attached
/// and the metadata `greenlet`, `greenlet_id`, `hub` and `error`. A
/// program (or a test) may install its own handler instead. Callable
/// from any thread.
public enum UnhandledErrorReporter {
    /// A report's receiver: the failed greenlet's name and its error.
    /// Called on the thread where the greenlet was let go.
    public typealias Handler = @Sendable (_ greenletName: String, _ error: any Error) -> Void

    private static let handler = Locked<Handler?>(nil)

    /// Replaces the handler; `nil` restores the default (a diagnostic).
    public static func setHandler(_ h: Handler?) {
        handler.withLock { $0 = h }
    }

    /// Reports `error`, the outcome of the greenlet `greenletName` (id
    /// `greenletID`) of hub `hub` (nil: gone), that nobody observed.
    static func report(greenletName: String, greenletID: UInt64, hub: Int?, error: any Error) {
        if let h = handler.withLock({ $0 }) {
            h(greenletName, error)
            return
        }
        GreenDiagnostics.emit(
            .error, "a greenlet failed and nobody asked for its result", error: error,
            metadata: [
                "greenlet": "\(greenletName)",
                "greenlet_id": "\(greenletID)",
                "hub": "\(hub.map(String.init) ?? "gone")",
                "error": "\(String(describing: error))",
                "error_type": "\(String(reflecting: type(of: error)))",
            ],
            plainLine: "swift-green: greenlet \(greenletName) failed and nobody asked for its result: \(error)\n")
    }
}

/// Writes all of `buf` to `fd` (retrying partial writes and EINTR);
/// false on any other error.
@discardableResult
func writeAll(fd: Int32, _ buf: UnsafeBufferPointer<UInt8>) -> Bool {
    var offset = 0
    while offset < buf.count {
        let n = Glibc.write(fd, buf.baseAddress! + offset, buf.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += n
    }
    return true
}
