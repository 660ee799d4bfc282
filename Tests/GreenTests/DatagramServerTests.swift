import Foundation
import Glibc
import Green
import XCTest
import GreenTestSupport

final class DatagramServerTests: GreenTestCase {
    func testADatagramServerAnswersEachSender() throws {
        let server = try DatagramServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { data, sender, socket in
            try socket.sendTo(data.reversed(), address: sender)
        }
        server.start()
        let clients = (0..<20).map { i in
            spawn { () throws -> Bool in
                let s = try Socket(type: .datagram)
                defer { s.close() }
                try s.bind(to: SocketAddress(ip: "127.0.0.1", port: 0))
                let message = Array("datagram \(i)".utf8)
                try s.sendTo(message, address: server.address)
                let (reply, from) = try s.recvFrom(timeout: 5)
                return reply == message.reversed() && from == server.address
            }
        }
        try withTimeout(10) { try joinAll(clients, raiseError: true) }
        XCTAssertTrue(clients.allSatisfy { $0.value == true })
        XCTAssertTrue(try withTimeout(5) { try server.stop(timeout: 5) })
        XCTAssertFalse(server.isServing)
    }
}
