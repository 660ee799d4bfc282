/// Why a WebSocket call failed, besides the stream's own per-wait timeout
/// (`SocketError` `.timedOut`, which leaves the WebSocket usable) and
/// interrupts (a kill, an enclosing timeout), which pass through unchanged.
/// A value: any thread.
public struct WebSocketError: Error, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable {
        /// The peer broke RFC 6455 or a limit of ours, and we failed the
        /// connection: a close frame with `code` went out (if it could)
        /// and the connection ended. `detail` names the rule broken.
        case protocolViolation(WebSocket.CloseCode, String)
        /// The connection ended (the peer closed it, or it was reset)
        /// before the close handshake: code 1006. `detail` names the
        /// transport error, if there was one.
        case endedWithoutClose(String)
        /// A send after this side sent its close frame, or a call after
        /// the connection ended.
        case closed
        /// Another greenlet is already receiving on this WebSocket: two
        /// receivers would take each other's frames.
        case busy
        /// A send that was interrupted (killed, timed out) after part of a
        /// frame may have gone: the frame stream is broken, so the
        /// connection was ended.
        case sendInterrupted
        /// Client: the URL is not a ws:// or wss:// URL we can connect to.
        case invalidURL(String)
        /// Client: the server answered the upgrade with `status` (not
        /// 101), its header fields in `headers`.
        case rejected(status: Int, headers: HTTPHeaders)
        /// Client: the server's 101 answer breaks the handshake rules
        /// (a wrong Sec-WebSocket-Accept, a missing Upgrade), named.
        case handshake(String)
    }

    /// What went wrong.
    public let kind: Kind

    /// An error of this kind.
    public init(_ kind: Kind) { self.kind = kind }

    /// What went wrong, in a sentence.
    public var description: String {
        switch kind {
        case .protocolViolation(let code, let detail): return "WebSocket failed with close code \(code): \(detail)"
        case .endedWithoutClose(let detail):
            return "WebSocket connection ended without a close frame" + (detail.isEmpty ? "" : ": \(detail)")
        case .closed: return "the WebSocket is closed"
        case .busy: return "another greenlet is already receiving on this WebSocket"
        case .sendInterrupted: return "a WebSocket send was interrupted partway; the connection was ended"
        case .invalidURL(let url): return "not a ws:// or wss:// URL: \(url)"
        case .rejected(let status, _): return "the server refused the WebSocket upgrade with status \(status)"
        case .handshake(let rule): return "invalid WebSocket handshake answer: \(rule)"
        }
    }

    /// The close code the failure stands for: the one sent for a
    /// violation, 1006 for a connection that ended, nil otherwise.
    public var closeCode: WebSocket.CloseCode? {
        switch kind {
        case .protocolViolation(let code, _): return code
        case .endedWithoutClose, .sendInterrupted: return .abnormal
        default: return nil
        }
    }
}
