import Green
import GreenTLS

/// A connection the HTTP server handed over after answering a request
/// with `Upgrade` by 101 (Switching Protocols): a byte stream in the new
/// protocol (WebSocket, say), TLS included when the server speaks HTTPS.
///
/// Reads first return what the client sent after its request and the
/// server had already read, then what arrives. The connection belongs to
/// the greenlet the server runs the upgrade on; the server closes it when
/// the `HTTPResponse.upgrade` closure returns.
public final class HTTPUpgradedConnection: ByteStream {
    /// The request that asked for the upgrade (body empty).
    public let request: HTTPRequest
    /// The underlying socket (for its addresses, options and `close`).
    public let socket: Socket
    private let transport: any ByteStream
    private var early: [UInt8]
    private var earlyStart = 0

    init(request: HTTPRequest, socket: Socket, tls: TLSSocket?, buffered: [UInt8]) {
        self.request = request
        self.socket = socket
        transport = tls ?? socket
        early = buffered
    }

    /// Reads what is available into `buffer`: first the bytes the server
    /// had already read, then from the connection, waiting at most
    /// `timeout` seconds (nil: the socket's `timeout`). 0 at the end of
    /// the stream. Blocks only the calling greenlet; throws `SocketError`
    /// (or `TLSError`), or the interrupt when the greenlet is killed or an
    /// enclosing timeout expires.
    public func recv(into buffer: UnsafeMutableRawBufferPointer, timeout: Double?) throws -> Int {
        if earlyStart < early.count, !buffer.isEmpty {
            let n = min(buffer.count, early.count - earlyStart)
            early.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[earlyStart..<(earlyStart + n)])) }
            earlyStart += n
            if earlyStart == early.count { early = [] ; earlyStart = 0 }
            return n
        }
        return try transport.recv(into: buffer, timeout: timeout)
    }

    /// Writes all of `bytes`, waiting as the socket's (or TLS's)
    /// `sendAll` does. Blocks only the calling greenlet; throws as
    /// `recv(into:timeout:)` does, after which part of `bytes` may have
    /// been sent.
    public func sendAll(_ bytes: UnsafeRawBufferPointer, timeout: Double?) throws {
        try transport.sendAll(bytes, timeout: timeout)
    }
}
