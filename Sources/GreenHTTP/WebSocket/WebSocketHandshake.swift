import Foundation
import Green
import GreenTLS

// The opening handshake (RFC 6455 section 4), the server's half: a GET
// with `Upgrade: websocket` is answered with 101 and the HTTP server then
// hands the connection to the WebSocket handler.

extension WebSocket {
    /// The GUID section 1.3 appends to the client's key.
    static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// The Sec-WebSocket-Accept value answering Sec-WebSocket-Key `key`:
    /// base64(SHA-1(key + the RFC's GUID)).
    public static func acceptValue(forKey key: String) -> String {
        let input = Array((key + acceptGUID).utf8)
        return Data(input.withUnsafeBytes { Digest.sha1($0) }).base64EncodedString()
    }

    /// Whether `value` holds `token` in its comma-separated list, without
    /// regard to case (as `Connection: keep-alive, Upgrade`).
    static func hasToken(_ token: String, in values: [String]) -> Bool {
        values.contains { value in
            value.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == token }
        }
    }

    /// The answer to a WebSocket upgrade request, for an `HTTPServer`
    /// handler to return:
    ///
    /// ```swift
    /// let server = try HTTPServer(on: address) { request in
    ///     WebSocket.upgradeResponse(for: request) { ws in
    ///         for message in ws { try ws.send(message) }      // echo
    ///     }
    /// }
    /// ```
    ///
    /// Checks `request` against section 4.2.1 and answers 101 (Switching
    /// Protocols) with Sec-WebSocket-Accept, the first of `subprotocols`
    /// the client offered (if any), and `headers`; once the server has
    /// sent it, `handler` runs on the connection's greenlet with the
    /// WebSocket (`options` its limits). A request that does not qualify
    /// gets, with a text body that says why: 405 for a method other than
    /// GET, 426 (Upgrade Required, with `Upgrade: websocket`) for one
    /// without Upgrade, 426 with `Sec-WebSocket-Version: 13` for another
    /// version, 400 for the rest (HTTP/1.0, an Upgrade other than
    /// websocket, Connection without the upgrade token, a
    /// Sec-WebSocket-Key that is not 16 bytes in base64).
    ///
    /// When `handler` returns with the WebSocket still open, it is closed
    /// with 1000 (waiting at most `options.closeTimeout` for the answer);
    /// when it throws, with 1011 (internal error). The server closes the
    /// connection after that.
    public static func upgradeResponse(for request: HTTPRequest, options: Options = Options(),
                                       subprotocols: [String] = [], headers: HTTPHeaders = [:],
                                       handler: @escaping @Sendable (WebSocket) throws -> Void) -> HTTPResponse {
        func refuse(_ status: Int, _ why: String, _ extra: HTTPHeaders = [:]) -> HTTPResponse {
            var response = HTTPResponse(status: status, text: "WebSocket upgrade refused: \(why)\n")
            if status == 426 { response.reason = "Upgrade Required" }
            for (name, value) in extra { response.headers.set(name, value) }
            return response
        }
        guard request.method == "GET" else {
            return refuse(405, "the method is \(request.method), not GET", ["Allow": "GET"])
        }
        guard request.version.major == 1 && request.version.minor >= 1 || request.version.major > 1 else {
            return refuse(400, "HTTP/\(request.version.major).\(request.version.minor), not HTTP/1.1")
        }
        let upgrade = request.headers.values("Upgrade")
        guard !upgrade.isEmpty else {
            return refuse(426, "no Upgrade header", ["Upgrade": "websocket", "Connection": "Upgrade"])
        }
        guard hasToken("websocket", in: upgrade) else {
            return refuse(400, "Upgrade is \"\(upgrade.joined(separator: ", "))\", not websocket")
        }
        guard hasToken("upgrade", in: request.headers.values("Connection")) else {
            return refuse(400, "Connection does not carry the upgrade token")
        }
        guard request.headers.values("Sec-WebSocket-Version").map({ $0.trimmingCharacters(in: .whitespaces) }) == ["13"] else {
            return refuse(426, "Sec-WebSocket-Version must be 13", ["Sec-WebSocket-Version": "13"])
        }
        let keys = request.headers.values("Sec-WebSocket-Key")
        guard keys.count == 1, let key = keys.first?.trimmingCharacters(in: .whitespaces),
              Data(base64Encoded: key)?.count == 16 else {
            return refuse(400, "Sec-WebSocket-Key must be one value of 16 bytes in base64")
        }
        let offered = request.headers.values("Sec-WebSocket-Protocol").flatMap {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let chosen = subprotocols.first { offered.contains($0) }

        var response = HTTPResponse(status: 101, reason: "Switching Protocols",
                                    headers: ["Upgrade": "websocket", "Connection": "Upgrade",
                                              "Sec-WebSocket-Accept": acceptValue(forKey: key)])
        if let chosen { response.headers.set("Sec-WebSocket-Protocol", chosen) }
        for (name, value) in headers { response.headers.add(name, value) }
        response.upgrade = { connection in
            let socket = connection.socket
            let ws = WebSocket(reader: BufferedReader(connection, capacity: options.bufferCapacity), role: .server,
                               options: options, subprotocol: chosen,
                               endTransport: { try? socket.shutdown() }, release: nil)
            do {
                try handler(ws)
            } catch {
                if ws.state == .open { try? ws.close(code: .internalError) }
                throw error
            }
            if ws.state != .closed { try ws.close() }
        }
        return response
    }
}
