/// One request and its response as the bytes that crossed the
/// connection (chunked framing and content coding as sent), for archives
/// such as WARC files. A response cut short (`complete` false) holds what
/// was read.
public struct HTTPExchange: Sendable {
    /// The URL requested.
    public let url: String
    /// The server's IP address, when connected over IP.
    public let remoteAddress: String?
    public let request: [UInt8]
    public let response: [UInt8]
    public let complete: Bool
}
