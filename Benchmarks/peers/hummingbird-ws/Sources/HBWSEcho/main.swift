// HBWSEcho: echoes every WebSocket message at / (text as text, binary as
// binary), on Hummingbird's default event loop group.
//
//   HBWSEcho PORT      (0 picks a free one)
//
// Prints "listening on 127.0.0.1:PORT" once the server is bound, the line
// ws-peers.sh waits for.
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8080
var logger = Logger(label: "hbws-echo")
logger.logLevel = .error

let wsRouter = Router(context: BasicWebSocketRequestContext.self)
wsRouter.ws("/") { _, _ in
    .upgrade([:])
} onUpgrade: { inbound, outbound, _ in
    for try await message in inbound.messages(maxSize: 1 << 20) {
        switch message {
        case .text(let text): try await outbound.write(.text(text))
        case .binary(let bytes): try await outbound.write(.binary(bytes))
        }
    }
}

let app = Application(
    router: Router(),
    server: .http1WebSocketUpgrade(webSocketRouter: wsRouter),
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    onServerRunning: { channel in
        print("listening on 127.0.0.1:\(channel.localAddress?.port ?? port)")
        fflush(nil)
    },
    logger: logger
)
try await app.runService()
