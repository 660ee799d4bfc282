import Foundation
import Green
import GreenTLS

// The opening handshake, the client's half (RFC 6455 section 4.1), over
// a socket of its own (not the HTTP client's pool: the connection becomes
// the WebSocket's for good).

extension WebSocket {
    /// Connects to `url` (ws:// or wss://), does the opening handshake
    /// and returns the open WebSocket (client role).
    ///
    /// Sends a GET with a random Sec-WebSocket-Key, `headers`, and
    /// Sec-WebSocket-Protocol listing `subprotocols` if any; checks the
    /// answer: 101, `Upgrade: websocket`, Connection with the upgrade
    /// token, the Sec-WebSocket-Accept that answers the key, a
    /// subprotocol among those offered (then in `subprotocol`), no
    /// extension. From `options`: connectTimeout (the TCP connect and the
    /// TLS handshake), readTimeout (each wait for the answer), limits
    /// (maxHeaderBytes of the answer), tlsVerification (wss; `tls`
    /// overrides it with a context of the caller's) and userAgent.
    /// `webSocketOptions` governs the WebSocket afterwards.
    ///
    /// Blocks only the calling greenlet. Throws `WebSocketError`
    /// `.invalidURL`; `.rejected(status:headers:)` for an answer other
    /// than 101; `.handshake` naming the rule a 101 broke; `HTTPClientError`
    /// for the connection (`.resolution` when the host does not resolve,
    /// `.connection`, `.timedOut(phase:seconds:)`, `.tls`,
    /// `.invalidHeader`, `.parse`, `.closedBeforeResponse`); the interrupt if
    /// the greenlet is killed or an enclosing timeout expires. The socket
    /// is closed on any failure. The WebSocket's socket is shut down when
    /// it closes and released with it; the WebSocket belongs to the
    /// calling thread.
    public static func connect(url: String, headers: HTTPHeaders = [:], subprotocols: [String] = [],
                               options: HTTPClient.Options = HTTPClient.Options(),
                               webSocketOptions: Options = Options(), tls: TLSContext? = nil) throws -> WebSocket {
        let lower = url.lowercased()
        let secure: Bool
        if lower.hasPrefix("wss://") { secure = true } else if lower.hasPrefix("ws://") { secure = false } else {
            throw WebSocketError(.invalidURL(url))
        }
        let httpURL = (secure ? "https://" : "http://") + url.dropFirst(secure ? 6 : 5)
        guard let parsed = RequestURL(httpURL) else { throw WebSocketError(.invalidURL(url)) }
        for (name, value) in headers where !HTTPHeaders.isSendableName(name) || !HTTPHeaders.isSendableValue(value) {
            throw HTTPClientError(url: url, kind: .invalidHeader(name: name))
        }

        var socket: Socket?
        // The step under way, to name it when it times out.
        var phase = "connect"
        do {
            let s = try Socket.connect(host: parsed.host, port: parsed.port, timeout: options.connectTimeout)
            socket = s
            try? s.setNoDelay()
            var tlsSocket: TLSSocket?
            if secure {
                phase = "TLS handshake"
                let context = try tls ?? TLSContext.client(verification: options.tlsVerification)
                let t = try TLSSocket(client: s, context: context, serverName: parsed.host, resuming: nil)
                tlsSocket = t
                try t.handshake(timeout: options.connectTimeout)
            }
            phase = "WebSocket handshake"
            let stream: any ByteStream = tlsSocket ?? s
            let reader = BufferedReader(stream, capacity: webSocketOptions.bufferCapacity)
            let chosen = try handshake(url: url, parsed, reader, headers: headers, subprotocols: subprotocols,
                                       options: options)
            return WebSocket(reader: reader, role: .client, options: webSocketOptions, subprotocol: chosen,
                             endTransport: { try? s.shutdown() }, release: { s.close() })
        } catch let e as SocketError {
            socket?.close()
            if case .timedOut(let seconds) = e.reason {
                throw HTTPClientError(url: url, kind: .timedOut(phase: phase, seconds: seconds))
            }
            throw HTTPClientError(url: url, kind: .connection(e))
        } catch let e as TLSError {
            socket?.close()
            throw HTTPClientError(url: url, kind: .tls(e))
        } catch let e as Resolver.Failure {
            throw HTTPClientError(url: url, kind: .resolution(e))
        } catch {
            socket?.close()
            throw error
        }
    }

    /// Sends the upgrade request and checks the answer; the subprotocol
    /// the server chose.
    private static func handshake(url: String, _ parsed: RequestURL, _ reader: BufferedReader, headers: HTTPHeaders,
                                  subprotocols: [String], options: HTTPClient.Options) throws -> String? {
        var nonce = [UInt8](repeating: 0, count: 16)
        nonce.withUnsafeMutableBytes { fillRandom($0) }
        let key = Data(nonce).base64EncodedString()
        let defaultPort: UInt16 = parsed.scheme == "https" ? 443 : 80
        let hostName = parsed.host.contains(":") ? "[\(parsed.host)]" : parsed.host
        let host = parsed.port == defaultPort ? hostName : "\(hostName):\(parsed.port)"
        var request = "GET \(parsed.target) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if !subprotocols.isEmpty { request += "Sec-WebSocket-Protocol: \(subprotocols.joined(separator: ", "))\r\n" }
        if headers["User-Agent"] == nil { request += "User-Agent: \(options.userAgent)\r\n" }
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        var bytes = Array(request.utf8)
        try bytes.withUnsafeBytes { try reader.stream.sendAll($0, timeout: options.readTimeout) }
        bytes.removeAll()

        // The answer's head, line by line; its body (if any) is not read.
        let limit = options.limits.maxHeaderBytes
        var used = 0
        func line() throws -> String {
            guard let text = try reader.readLine(maxLength: Swift.max(0, limit - used), timeout: options.readTimeout) else {
                throw HTTPClientError(url: url, kind: used == 0 ? .closedBeforeResponse : .parse(HTTPParseError(kind: .truncated)))
            }
            used += text.utf8.count + 2
            return text
        }
        let status: Int
        do {
            let statusLine = try line()
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else {
                throw WebSocketError(.handshake("the status line \"\(statusLine.prefix(100))\" is not HTTP/1.x"))
            }
            status = code
        } catch BufferedReadError.lineTooLong {
            throw HTTPClientError(url: url, kind: .parse(HTTPParseError(kind: .headersTooLarge(limit: limit))))
        }
        var answer = HTTPHeaders()
        do {
            while true {
                let field = try line()
                if field.isEmpty { break }
                if field.first == " " || field.first == "\t" {
                    throw WebSocketError(.handshake("a folded header line (obs-fold)"))
                }
                guard let colon = field.firstIndex(of: ":") else {
                    throw WebSocketError(.handshake("a header line without a colon: \"\(field.prefix(100))\""))
                }
                answer.add(String(field[..<colon]), field[field.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                if answer.count > options.limits.maxHeaderCount {
                    throw HTTPClientError(url: url, kind: .parse(HTTPParseError(kind: .tooManyHeaders(limit: options.limits.maxHeaderCount))))
                }
            }
        } catch BufferedReadError.lineTooLong {
            throw HTTPClientError(url: url, kind: .parse(HTTPParseError(kind: .headersTooLarge(limit: limit))))
        }

        guard status == 101 else { throw WebSocketError(.rejected(status: status, headers: answer)) }
        guard hasToken("websocket", in: answer.values("Upgrade")) else {
            throw WebSocketError(.handshake("Upgrade is \"\(answer["Upgrade"] ?? "")\", not websocket"))
        }
        guard hasToken("upgrade", in: answer.values("Connection")) else {
            throw WebSocketError(.handshake("Connection does not carry the upgrade token"))
        }
        let expected = acceptValue(forKey: key)
        guard answer.values("Sec-WebSocket-Accept").map({ $0.trimmingCharacters(in: .whitespaces) }) == [expected] else {
            throw WebSocketError(.handshake("Sec-WebSocket-Accept is \"\(answer["Sec-WebSocket-Accept"] ?? "")\", not \"\(expected)\""))
        }
        guard answer["Sec-WebSocket-Extensions"] == nil else {
            throw WebSocketError(.handshake("the server chose an extension (\(answer["Sec-WebSocket-Extensions"]!)) none was offered"))
        }
        let chosen = answer["Sec-WebSocket-Protocol"]?.trimmingCharacters(in: .whitespaces)
        if let chosen, !subprotocols.contains(chosen) {
            throw WebSocketError(.handshake("the server chose subprotocol \"\(chosen)\", which was not offered"))
        }
        return chosen
    }
}

extension HTTPClient {
    /// Opens a WebSocket to `url` (ws:// or wss://) with this client's
    /// options (timeouts, TLS verification, user agent); see
    /// `WebSocket.connect(url:headers:subprotocols:options:webSocketOptions:tls:)`.
    /// The connection is the WebSocket's own, not one of the client's
    /// pooled connections. Blocks and throws as that call does.
    public func webSocket(_ url: String, headers: HTTPHeaders = [:], subprotocols: [String] = [],
                          options webSocketOptions: WebSocket.Options = WebSocket.Options()) throws -> WebSocket {
        try WebSocket.connect(url: url, headers: headers, subprotocols: subprotocols, options: options,
                              webSocketOptions: webSocketOptions)
    }
}
