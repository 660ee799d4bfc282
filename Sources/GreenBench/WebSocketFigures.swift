// The WebSocket echo figure: ws-echo --port (one hub) loaded by
// ws-echo --connect in a separate process (100 connections, 64-byte
// binary messages, one at a time on each connection).
import Foundation

extension EchoBench {
    /// Messages per second echoed by `ws-echo --port 0`, as its client
    /// counts them: `connections` WebSockets each sending `messages`
    /// messages of `size` bytes and waiting for each echo.
    static func wsEchoMessagesPerSecond(connections: Int = 100, size: Int = 64, messages: Int) throws -> Double {
        let (server, port) = try startServer("ws-echo", ["--port", "0"])
        defer { stop(server) }
        let (status, data) = try run(executable("ws-echo"), [
            "--connect", "ws://127.0.0.1:\(port)/", "--connections", "\(connections)", "--size", "\(size)",
            "--messages", "\(messages)", "--json"])
        guard status == 0,
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let rate = (object["messages_per_s"] as? Int).map(Double.init) ?? object["messages_per_s"] as? Double
        else {
            throw Missing(name: "ws-echo's figure (it printed: \(String(decoding: data, as: UTF8.self)))")
        }
        return rate
    }
}
