/// Writes a streamed (chunked) response body, one chunk per `write`.
public struct HTTPBodyWriter {
    let transport: any HTTPTransport
    let timeout: Double

    /// Sends `bytes` as one chunk (nothing for an empty array, which would
    /// end the body).
    public func write(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        try transport.sendAll(String(bytes.count, radix: 16) + "\r\n", timeout: timeout)
        try transport.sendAll(bytes, timeout: timeout)
        try transport.sendAll("\r\n", timeout: timeout)
    }

    public func write(_ text: String) throws { try write(Array(text.utf8)) }
}
