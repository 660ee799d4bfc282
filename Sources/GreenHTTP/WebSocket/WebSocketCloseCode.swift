extension WebSocket {
    /// A close status code (RFC 6455 section 7.4): why a WebSocket closed.
    /// The ones the RFC and its registry define are named; 3000-3999
    /// (registered with IANA) and 4000-4999 (private use) are applications'.
    public struct CloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The code as it travels in a close frame.
        public let rawValue: UInt16
        /// The code `rawValue`, whatever it is (see `isSendable`).
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// The code `rawValue`; the same as `init(rawValue:)`.
        public init(_ rawValue: UInt16) { self.rawValue = rawValue }

        /// 1000: the purpose of the connection was fulfilled.
        public static let normal = CloseCode(1000)
        /// 1001: the endpoint is going away (a server shutting down, a
        /// browser leaving the page).
        public static let goingAway = CloseCode(1001)
        /// 1002: the peer broke the protocol (a bad frame).
        public static let protocolError = CloseCode(1002)
        /// 1003: a kind of message the endpoint cannot take (binary where
        /// only text is understood, say).
        public static let unsupportedData = CloseCode(1003)
        /// 1005: a close frame that carried no code (never sent).
        public static let noStatus = CloseCode(1005)
        /// 1006: the connection ended without a close frame (never sent).
        public static let abnormal = CloseCode(1006)
        /// 1007: a text message (or close reason) that is not UTF-8.
        public static let invalidPayload = CloseCode(1007)
        /// 1008: a message that breaks the endpoint's policy.
        public static let policyViolation = CloseCode(1008)
        /// 1009: a frame or message over the endpoint's size limits.
        public static let messageTooBig = CloseCode(1009)
        /// 1010: the client needed an extension the server did not agree to.
        public static let mandatoryExtension = CloseCode(1010)
        /// 1011: the server met a condition that kept it from fulfilling
        /// the request (an error in its handler).
        public static let internalError = CloseCode(1011)

        /// Whether the code may travel in a close frame: 1000-1003,
        /// 1007-1014 and 3000-4999. 1005 and 1006 stand for "no code" and
        /// "no close frame" locally; 1004, 1015 and 1016-2999 are reserved.
        public var isSendable: Bool {
            switch rawValue {
            case 1000...1003, 1007...1014, 3000...4999: return true
            default: return false
            }
        }

        /// The number and its name: "1000 (normal closure)".
        public var description: String {
            let name: String
            switch self {
            case .normal: name = "normal closure"
            case .goingAway: name = "going away"
            case .protocolError: name = "protocol error"
            case .unsupportedData: name = "unsupported data"
            case .noStatus: name = "no status code"
            case .abnormal: name = "closed without a close frame"
            case .invalidPayload: name = "invalid payload data"
            case .policyViolation: name = "policy violation"
            case .messageTooBig: name = "message too big"
            case .mandatoryExtension: name = "mandatory extension"
            case .internalError: name = "internal error"
            default: name = rawValue >= 4000 ? "private" : rawValue >= 3000 ? "registered" : "reserved"
            }
            return "\(rawValue) (\(name))"
        }
    }
}
