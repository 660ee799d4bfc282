import Green
import GreenTLS

extension WebSocket {
    /// A whole message, its fragments joined.
    public enum Message: Equatable, Sendable {
        /// A text message (checked to be UTF-8 on the way in).
        case text(String)
        /// A binary message.
        case binary([UInt8])
    }
}

extension WebSocket: Sequence {
    /// Iterates by `receive()` until the close handshake ends the
    /// connection:
    ///
    /// ```swift
    /// for message in webSocket { try webSocket.send(message) }
    /// if let error = webSocket.error { ... }   // the loop ended early
    /// ```
    ///
    /// A `for` loop cannot throw from its iterator. If the greenlet is
    /// killed or an enclosing timeout expires while the loop waits, the
    /// loop ends and the interrupt is thrown at the greenlet's next
    /// blocking call (as a `for` loop over a `Queue`). Any other error (a
    /// protocol violation, the connection ending without a close frame,
    /// a receive timeout) ends the loop and is kept in `error`. Where the
    /// difference matters, loop with `while let m = try webSocket.receive()`.
    public struct Iterator: IteratorProtocol {
        let webSocket: WebSocket

        /// The next message by `receive()` (blocking only the calling
        /// greenlet); nil once the connection is closed or on an error,
        /// as the type's comment says. Never throws.
        public mutating func next() -> Message? {
            do {
                return try webSocket.receive()
            } catch {
                if WebSocket.isStreamError(error) {
                    webSocket.error = error
                } else {
                    Hub.rearmInterrupt()
                }
                return nil
            }
        }
    }

    /// An iterator that receives messages until the connection closes.
    public func makeIterator() -> Iterator { Iterator(webSocket: self) }

    /// Whether `error` came from the connection (kept by a `for` loop)
    /// rather than being an interrupt (thrown again at the next blocking
    /// call).
    static func isStreamError(_ error: any Error) -> Bool {
        error is WebSocketError || error is SocketError || error is BufferedReadError || error is TLSError
    }
}
