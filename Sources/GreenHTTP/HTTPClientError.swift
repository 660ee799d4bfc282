import Glibc
import Green
import GreenTLS

/// A request that failed, naming the URL and why. A value: any thread.
public struct HTTPClientError: Error, CustomStringConvertible {
    /// Why the request failed.
    public enum Kind: Sendable {
        /// The URL could not be parsed into scheme, host, port and target.
        case invalidURL
        /// A scheme other than http and https (named).
        case unsupportedScheme(String)
        /// The host name did not resolve; the resolver's error (its code
        /// and message).
        case resolution(Resolver.Failure)
        /// Connecting, reading or writing failed; the socket's error.
        case connection(SocketError)
        /// A timeout of the client's options expired: `phase` is
        /// "connect", "TLS handshake", "read", "write" or "total", and
        /// `seconds` the limit.
        case timedOut(phase: String, seconds: Double)
        /// The response was not acceptable HTTP, was over a limit, or was
        /// cut off after its first bytes.
        case parse(HTTPParseError)
        /// The server closed the connection before sending a byte of a
        /// response.
        case closedBeforeResponse
        /// A gzip or deflate body could not be decoded, or decoded to
        /// more than the body limit; the decoder's message.
        case decoding(String)
        /// More redirects than `maxRedirects`.
        case tooManyRedirects(limit: Int)
        /// A redirect to a URL already visited in this request.
        case redirectLoop(at: String)
        /// A redirect to another host, with `allowCrossHostRedirects`
        /// false.
        case crossHostRedirect(to: String)
        /// A redirect from https to http, refused unless
        /// `allowInsecureRedirects`.
        case insecureRedirect(to: String)
        /// A redirect whose `Location` is not an http or https URL.
        case invalidRedirect(location: String)
        /// The TLS handshake (a certificate that does not verify, named
        /// why) or TLS on an established connection failed.
        case tls(TLSError)
        /// A header name or value the request cannot carry: a control
        /// character (a CR or LF would start another header line), or a
        /// name with a colon or white space.
        case invalidHeader(name: String)
        /// The request's body could not be sent as declared (a file that
        /// cannot be read, pieces that do not add up to the length).
        case requestBody(String)
    }

    /// The URL of the request that failed (in a redirect chain, the one
    /// that failed, or the first for `.tooManyRedirects` and
    /// `.redirectLoop`).
    public let url: String
    /// Why it failed.
    public let kind: Kind
    var bytesReceived = 0

    init(url: String, kind: Kind, bytesReceived: Int = 0) {
        self.url = url
        self.kind = kind
        self.bytesReceived = bytesReceived
    }

    /// A reused connection that turned out closed before any answer.
    var isStaleConnection: Bool {
        guard bytesReceived == 0 else { return false }
        switch kind {
        case .closedBeforeResponse: return true
        case .connection(let e):
            return e.errno == ECONNRESET || e.errno == EPIPE || e.reason == .closed
        case .tls(let e): return e.kind == .io
        default: return false
        }
    }

    /// "<url>: <why>".
    public var description: String {
        let why: String
        switch kind {
        case .invalidURL: why = "not a usable URL"
        case .unsupportedScheme(let s): why = "unsupported scheme \"\(s)\""
        case .resolution(let e): why = "\(e)"
        case .connection(let e): why = "\(e)"
        case .timedOut(let phase, let s): why = "\(phase) timeout after \(s) s"
        case .parse(let e): why = "\(e)"
        case .closedBeforeResponse: why = "the server closed the connection without a response"
        case .decoding(let d): why = d
        case .tooManyRedirects(let n): why = "more than \(n) redirects"
        case .redirectLoop(let at): why = "redirect loop at \(at)"
        case .crossHostRedirect(let to): why = "redirect to another host (\(to)) not allowed"
        case .insecureRedirect(let to): why = "redirect from https to http (\(to)) refused (allowInsecureRedirects)"
        case .tls(let e): why = "\(e)"
        case .invalidRedirect(let l): why = "unusable redirect Location \"\(l)\""
        case .requestBody(let d): why = d
        case .invalidHeader(let n): why = "header \(n.debugDescription) cannot be sent: a control character, or a colon or space in its name"
        }
        return "\(url): \(why)"
    }
}
