/// One request and its response as the bytes that crossed the
/// connection (chunked framing and content coding as sent), for archives
/// such as WARC files. A response cut short (`complete` false) holds what
/// was read. A value: any thread.
public struct HTTPExchange: Sendable {
    /// The URL requested.
    public let url: String
    /// The server's IP address, when connected over IP.
    public let remoteAddress: String?
    /// The request as written: start line, header section and body.
    public let request: [UInt8]
    /// The response as read, from its status line on.
    public let response: [UInt8]
    /// Whether `response` holds the whole response; false when it was cut
    /// short (a stream closed early, a sink that stopped, an error).
    public let complete: Bool
}
