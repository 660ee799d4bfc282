import Glibc

/// A socket call that failed: which call, why, and on which address.
public struct SocketError: Error, CustomStringConvertible, Equatable {
    /// Why the call failed.
    public enum Reason: Equatable, Sendable {
        /// The system call failed with this errno.
        case system(errno: Int32)
        /// The call's own timeout (or the socket's default) expired.
        case timedOut(seconds: Double)
        /// The socket was closed, before the call or by another greenlet
        /// while the call waited.
        case closed
        /// Another greenlet is already waiting to do the same on this
        /// socket: two readers (or writers) would steal each other's data.
        case busy(waiter: String)
    }

    /// The call: "connect", "recv", "accept", ...
    public let operation: String
    /// Why it failed.
    public let reason: Reason
    /// The address involved, when there is one.
    public let address: SocketAddress?

    /// An error for `operation` (for layers over sockets that report in
    /// the same terms, as TLS does).
    public init(operation: String, reason: Reason, address: SocketAddress? = nil) {
        self.operation = operation
        self.reason = reason
        self.address = address
    }

    /// The errno of a failed system call, if that is the reason.
    public var errno: Int32? {
        if case .system(let e) = reason { return e }
        return nil
    }

    /// The call, the address and the reason: "connect 10.0.0.1:80:
    /// Connection refused (errno 111)".
    public var description: String {
        var text = "\(operation)"
        if let address { text += " \(address)" }
        switch reason {
        case .system(let e):
            text += ": \(String(cString: strerror(e))) (errno \(e))"
        case .timedOut(let s):
            text += ": timed out after \(s) s"
        case .closed:
            text += ": the socket is closed"
        case .busy(let waiter):
            text += ": greenlet \(waiter) is already waiting for this on the same socket"
        }
        return text
    }

    static func system(_ operation: String, _ err: Int32 = Glibc.errno, address: SocketAddress? = nil) -> SocketError {
        SocketError(operation: operation, reason: .system(errno: err), address: address)
    }
}
