import Green

/// Writes a streamed response body (`HTTPResponse.bodyWriter`): in chunks
/// (`Transfer-Encoding: chunked`, one chunk per `write`), or as it is when
/// the response names its `Content-Length` (the writes must add up to it,
/// or the connection is closed: its framing would be broken).
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
    public let declared: Int
    public let written: Int
    public var description: String { "response body of \(written) bytes, Content-Length \(declared)" }
}
