extension WebSocket {
    /// Limits and timeouts of one WebSocket. A value: any thread may make
    /// one.
    public struct Options: Sendable {
        /// The largest frame payload accepted; a larger frame fails the
        /// connection with 1009 (message too big) before its payload is
        /// read.
        public var maxFrameSize = 1 << 20
        /// The largest message accepted, its fragments added up; a larger
        /// one fails the connection with 1009 as soon as the fragment
        /// that crosses the limit is announced.
        public var maxMessageSize = 16 << 20
        /// Messages longer than this are sent as fragments of this many
        /// bytes (nil: each message in one frame). Control frames (a pong
        /// answering a ping, say) may go between the fragments.
        public var fragmentSize: Int?
        /// Seconds each wait of `receive` may last (nil: as long as it
        /// takes); a call's own `timeout` overrides it.
        public var receiveTimeout: Double?
        /// Seconds each wait of a send may last; a call's own `timeout`
        /// overrides it.
        public var sendTimeout: Double? = 30
        /// Seconds `close` waits for the peer's close frame before it
        /// ends the connection anyway; also bounds the close frame sent
        /// when the connection fails.
        public var closeTimeout = 5.0
        /// Bytes of the read and of the write buffer.
        public var bufferCapacity = 8 * 1024

        /// The options with these limits and fragment size, the other
        /// fields at their defaults. Sizes must be positive.
        public init(maxFrameSize: Int = 1 << 20, maxMessageSize: Int = 16 << 20, fragmentSize: Int? = nil) {
            precondition(maxFrameSize > 0 && maxMessageSize > 0, "WebSocket size limits must be positive")
            precondition(fragmentSize.map { $0 > 0 } ?? true, "a fragment size must be positive")
            self.maxFrameSize = maxFrameSize
            self.maxMessageSize = maxMessageSize
            self.fragmentSize = fragmentSize
        }
    }
}
