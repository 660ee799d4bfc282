import Green

/// Writes a streamed response body (`HTTPResponse.bodyWriter`): in chunks
/// (`Transfer-Encoding: chunked`, one chunk per `write`), or as it is when
/// the response names its `Content-Length` (the writes must add up to it,
/// or the connection is closed: its framing would be broken).
///
/// The server hands it to the `bodyWriter` closure, on the connection's
/// greenlet; use it there only. Each `write` blocks only that greenlet, at
/// most the server's `writeTimeout` for each wait, and throws
/// `SocketError` (or `TLSError`) when the client is gone or does not read,
/// `HTTPBodyLengthError` past the declared length, or the interrupt when
/// the greenlet is killed or an enclosing timeout expires.
public struct HTTPBodyWriter {
    let transport: any ByteStream
    let timeout: Double
    let chunked: Bool
    let length: Int?
    private let written = Counter()

    private final class Counter { var bytes = 0 }

    init(transport: any ByteStream, timeout: Double, chunked: Bool = true, length: Int? = nil) {
        self.transport = transport
        self.timeout = timeout
        self.chunked = chunked
        self.length = length
    }

    /// Sends `bytes` (as one chunk when chunked; nothing for an empty
    /// array, which would end a chunked body).
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Sends `bytes` without copying them; see `write(_:)`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        written.bytes += bytes.count
        if let length, written.bytes > length {
            throw HTTPBodyLengthError(declared: length, written: written.bytes)
        }
        if chunked { try transport.sendAll(String(bytes.count, radix: 16) + "\r\n", timeout: timeout) }
        try transport.sendAll(bytes, timeout: timeout)
        if chunked { try transport.sendAll("\r\n", timeout: timeout) }
    }

    /// Sends `text` as UTF-8; see `write(_:)`.
    public func write(_ text: String) throws { try write(Array(text.utf8)) }

    /// Ends the body: the last chunk, or a check that the length was met.
    func finish() throws {
        if chunked {
            try transport.sendAll("0\r\n\r\n", timeout: timeout)
        } else if let length, written.bytes != length {
            throw HTTPBodyLengthError(declared: length, written: written.bytes)
        }
    }
}

/// A streamed response body that does not add up to its `Content-Length`.
public struct HTTPBodyLengthError: Error, CustomStringConvertible {
    /// The `Content-Length` the response declared.
    public let declared: Int
    /// The bytes written when the mismatch was found: over `declared`, or
    /// (at the end) under it.
    public let written: Int
    /// The two figures, in a sentence.
    public var description: String { "response body of \(written) bytes, Content-Length \(declared)" }
}
