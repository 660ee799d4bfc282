public struct CrawlError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
