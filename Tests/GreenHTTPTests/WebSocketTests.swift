import Foundation
import Glibc
import Green
@testable import GreenHTTP
import XCTest
import GreenTestSupport

/// A byte stream that plays `input` back in pieces cut at `cuts` (offsets)
/// and keeps what is sent.
final class FrameScript: ByteStream {
    private let input: [UInt8]
    private var pieces: [Range<Int>]
    var output: [UInt8] = []

    init(_ input: [UInt8], cuts: [Int] = []) {
        self.input = input
        let bounds = [0] + cuts.filter { $0 > 0 && $0 < input.count }.sorted() + [input.count]
        pieces = zip(bounds, bounds.dropFirst()).map { $0..<$1 }.filter { !$0.isEmpty }
    }

    func recv(into buffer: UnsafeMutableRawBufferPointer, timeout: Double?) throws -> Int {
        guard let piece = pieces.first else { return 0 }
        let n = Swift.min(buffer.count, piece.count)
        input.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[piece.lowerBound..<(piece.lowerBound + n)])) }
        if n == piece.count { pieces.removeFirst() } else { pieces[0] = (piece.lowerBound + n)..<piece.upperBound }
        return n
    }

    func sendAll(_ bytes: UnsafeRawBufferPointer, timeout: Double?) throws {
        output += bytes
    }
}

/// Frames as a peer would send them, for scripted streams.
enum Frames {
    /// One frame; masked with `key` when given (a client's frame).
    static func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, key: [UInt8]? = nil,
                      rsv: UInt8 = 0, forceLength64: Bool = false) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | rsv | opcode]
        let maskBit: UInt8 = key == nil ? 0 : 0x80
        let n = payload.count
        if n <= 125 && !forceLength64 {
            out.append(maskBit | UInt8(n))
        } else if n <= 0xFFFF && !forceLength64 {
            out += [maskBit | 126, UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            out.append(maskBit | 127)
            for i in (0..<8).reversed() { out.append(UInt8(truncatingIfNeeded: UInt64(n) >> (8 * UInt64(i)))) }
        }
        if let key {
            out += key
            out += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        } else {
            out += payload
        }
        return out
    }

    static let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]

    /// A client's (masked) frame.
    static func client(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
        frame(opcode, payload, fin: fin, key: key)
    }

    static func close(_ code: UInt16, _ reason: String = "") -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
    }

    /// The frames in `bytes` (unmasked): (fin, opcode, payload, masked).
    static func parse(_ bytes: [UInt8]) -> [(fin: Bool, opcode: UInt8, payload: [UInt8], masked: Bool)] {
        var frames: [(Bool, UInt8, [UInt8], Bool)] = []
        var i = 0
        while i + 2 <= bytes.count {
            let fin = bytes[i] & 0x80 != 0
            let opcode = bytes[i] & 0x0F
            let masked = bytes[i + 1] & 0x80 != 0
            var n = Int(bytes[i + 1] & 0x7F)
            i += 2
            if n == 126 { n = Int(bytes[i]) << 8 | Int(bytes[i + 1]); i += 2 } else if n == 127 {
                n = (0..<8).reduce(0) { $0 << 8 | Int(bytes[i + $1]) }
                i += 8
            }
            var key: [UInt8] = [0, 0, 0, 0]
            if masked { key = Array(bytes[i..<(i + 4)]); i += 4 }
            let payload = bytes[i..<(i + n)].enumerated().map { $0.element ^ key[$0.offset % 4] }
            frames.append((fin, opcode, payload, masked))
            i += n
        }
        return frames
    }
}

final class WebSocketTests: GreenTestCase {
    // MARK: - Frames

    func testTheAcceptValueIsTheRFCsExample() {
        XCTAssertEqual(WebSocket.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    func testLengthsAt125_126_65535_65536TakeTheShortestFormAndReadBack() throws {
        for n in [0, 125, 126, 65535, 65536] {
            let out = FrameScript([])
            let server = WebSocket(stream: out, role: .server, options: WebSocket.Options(maxFrameSize: 1 << 20))
            let payload = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            try server.send(binary: payload)
            let headerSize = n <= 125 ? 2 : n <= 65535 ? 4 : 10
            XCTAssertEqual(out.output.count, headerSize + n, "length \(n)")
            XCTAssertEqual(out.output[1] & 0x7F, n <= 125 ? UInt8(n) : n <= 65535 ? 126 : 127, "length \(n)")
            let client = WebSocket(stream: FrameScript(out.output), role: .client)
            XCTAssertEqual(try client.receive(), .binary(payload), "length \(n)")
        }
    }

    func testAClientMasksEachFrameWithAFreshKeyThatTheServerRemoves() throws {
        let out = FrameScript([])
        let client = WebSocket(stream: out, role: .client)
        let text = String(repeating: "mask me ", count: 20)
        try client.send(text: text)
        try client.send(text: text)
        let frames = Frames.parse(out.output)
        XCTAssertEqual(frames.count, 2)
        XCTAssertTrue(frames.allSatisfy { $0.masked && $0.payload == Array(text.utf8) })
        XCTAssertNotEqual(Array(out.output[4..<8]), Array(out.output[(out.output.count / 2 + 4)..<(out.output.count / 2 + 8)]),
                          "two frames, two masking keys")
        XCTAssertFalse(String(decoding: out.output, as: UTF8.self).contains("mask me"), "the payload went out masked")
        let server = WebSocket(stream: FrameScript(out.output), role: .server)
        XCTAssertEqual(try server.receive(), .text(text))
        XCTAssertEqual(try server.receive(), .text(text))
    }

    /// A fragmented text message (a character split between fragments)
    /// with a ping between its fragments, a 126-byte binary message and a
    /// close, cut at every offset and into single bytes.
    func testEverySplitOfAFrameStreamGivesTheSameMessages() throws {
        let euro = Array("€".utf8)   // E2 82 AC
        let stream = Frames.client(0x1, Array("price: ".utf8) + euro[0..<1], fin: false)
            + Frames.client(0x9, Array("are you there".utf8))
            + Frames.client(0x0, Array(euro[1...]) + Array(" 5".utf8))
            + Frames.client(0x2, [UInt8](repeating: 9, count: 126))
            + Frames.client(0x8, Frames.close(1000))
        var cutsList: [[Int]] = (1..<stream.count).map { [$0] }
        cutsList.append(Array(1..<stream.count))
        for cuts in cutsList {
            let scripted = FrameScript(stream, cuts: cuts)
            let ws = WebSocket(stream: scripted, role: .server)
            XCTAssertEqual(try ws.receive(), .text("price: € 5"), "cuts \(cuts.prefix(3))")
            XCTAssertEqual(try ws.receive(), .binary([UInt8](repeating: 9, count: 126)))
            XCTAssertNil(try ws.receive())
            XCTAssertEqual(ws.closeCode, .normal)
            let sent = Frames.parse(scripted.output)
            XCTAssertEqual(sent.map(\.opcode), [0xA, 0x8], "a pong, then the close echoed")
            XCTAssertEqual(sent.first?.payload, Array("are you there".utf8))
            XCTAssertEqual(sent.last?.payload, Frames.close(1000))
        }
    }

    func testMessagesAreSentInFragmentsWhenAsked() throws {
        let out = FrameScript([])
        let server = WebSocket(stream: out, role: .server)
        try server.send(text: "abcdefghij", fragmentSize: 4)
        let frames = Frames.parse(out.output)
        XCTAssertEqual(frames.map(\.opcode), [0x1, 0x0, 0x0])
        XCTAssertEqual(frames.map(\.fin), [false, false, true])
        XCTAssertEqual(frames.map { String(decoding: $0.payload, as: UTF8.self) }, ["abcd", "efgh", "ij"])
        XCTAssertEqual(try WebSocket(stream: FrameScript(out.output), role: .client).receive(), .text("abcdefghij"))
    }

    // MARK: - Violations

    func testEachProtocolViolationFailsTheConnectionWithItsCode() throws {
        let options = WebSocket.Options(maxFrameSize: 1000, maxMessageSize: 1500)
        let cases: [(String, WebSocket.Role, [UInt8], UInt16)] = [
            ("a reserved bit", .server, Frames.frame(0x1, [0x61], key: Frames.key, rsv: 0x40), 1002),
            ("reserved data opcode 3", .server, Frames.client(0x3, []), 1002),
            ("reserved control opcode 0xB", .server, Frames.client(0xB, []), 1002),
            ("an unmasked client frame", .server, Frames.frame(0x1, [0x61]), 1002),
            ("a masked server frame", .client, Frames.client(0x1, [0x61]), 1002),
            ("a 126-byte ping", .server, Frames.client(0x9, [UInt8](repeating: 0, count: 126)), 1002),
            ("a fragmented ping", .server, Frames.client(0x9, [1], fin: false), 1002),
            ("a continuation with no message", .server, Frames.client(0x0, [0x61]), 1002),
            ("a new message inside a fragmented one", .server,
             Frames.client(0x1, [0x61], fin: false) + Frames.client(0x2, [0x62]), 1002),
            ("invalid UTF-8", .server, Frames.client(0x1, [0x61, 0xC0, 0xAF]), 1007),
            ("a surrogate", .server, Frames.client(0x1, [0xED, 0xA0, 0x80]), 1007),
            ("text ending inside a character", .server, Frames.client(0x1, [0x61, 0xE2, 0x82]), 1007),
            ("invalid UTF-8 in a first fragment, before the rest arrives", .server,
             Frames.client(0x1, [0xFF], fin: false), 1007),
            ("a frame over maxFrameSize", .server, Frames.client(0x2, [UInt8](repeating: 0, count: 1001)), 1009),
            ("a message over maxMessageSize", .server,
             Frames.client(0x2, [UInt8](repeating: 0, count: 800), fin: false)
                + Frames.client(0x0, [UInt8](repeating: 0, count: 800)), 1009),
            ("a 1-byte close payload", .server, Frames.client(0x8, [3]), 1002),
            ("close code 1005", .server, Frames.client(0x8, Frames.close(1005)), 1002),
            ("close code 999", .server, Frames.client(0x8, Frames.close(999)), 1002),
            ("a close reason that is not UTF-8", .server, Frames.client(0x8, Frames.close(1000) + [0xC3]), 1007),
            ("a 64-bit length with its top bit set", .client,
             [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1], 1002),
        ]
        for (name, role, bytes, code) in cases {
            let scripted = FrameScript(bytes)
            let ws = WebSocket(stream: scripted, role: role, options: options)
            XCTAssertThrowsError(try ws.receive(), name) { error in
                guard case .protocolViolation(let got, _)? = (error as? WebSocketError)?.kind else {
                    return XCTFail("\(name): \(error)")
                }
                XCTAssertEqual(got.rawValue, code, name)
            }
            XCTAssertEqual(ws.state, .closed, name)
            XCTAssertEqual(ws.closeCode?.rawValue, code, name)
            let sent = Frames.parse(scripted.output)
            XCTAssertEqual(sent.count, 1, name)
            XCTAssertEqual(sent.first?.opcode, 0x8, name)
            XCTAssertEqual(sent.first.map { UInt16($0.payload[0]) << 8 | UInt16($0.payload[1]) }, code, name)
            XCTAssertEqual(sent.first?.masked, role == .client, name)
            XCTAssertThrowsError(try ws.receive(), "\(name): the failure again")
        }
    }

    func testAStreamThatEndsWithoutACloseFrameIs1006() throws {
        let ws = WebSocket(stream: FrameScript(Frames.client(0x1, [0x61], fin: false) + [0x80]), role: .server)
        XCTAssertThrowsError(try ws.receive()) { error in
            guard case .endedWithoutClose? = (error as? WebSocketError)?.kind else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(ws.closeCode, .abnormal)
        XCTAssertThrowsError(try ws.send(text: "late"))
    }

    func testAPeersCloseIsAnsweredWithItsCodeAndEndsReceiving() throws {
        let scripted = FrameScript(Frames.client(0x1, Array("last".utf8)) + Frames.client(0x8, Frames.close(4000, "bye ✓")))
        let ws = WebSocket(stream: scripted, role: .server)
        XCTAssertEqual(try ws.receive(), .text("last"))
        XCTAssertNil(try ws.receive())
        XCTAssertEqual(ws.closeCode, WebSocket.CloseCode(4000))
        XCTAssertEqual(ws.closeReason, "bye ✓")
        XCTAssertEqual(ws.state, .closed)
        XCTAssertEqual(Frames.parse(scripted.output).map(\.payload), [Frames.close(4000)])
        XCTAssertNil(try ws.receive(), "nil from then on")
        XCTAssertThrowsError(try ws.send(text: "after"))
    }

    func testCloseSendsItsCodeAndReadsUntilThePeersCloseDroppingMessages() throws {
        let scripted = FrameScript(Frames.client(0x1, Array("in flight".utf8)) + Frames.client(0x8, Frames.close(1001)))
        let ws = WebSocket(stream: scripted, role: .server)
        try ws.close(code: .policyViolation, reason: "enough")
        XCTAssertEqual(ws.state, .closed)
        XCTAssertEqual(ws.closeCode, .goingAway, "the peer's code")
        XCTAssertEqual(Frames.parse(scripted.output).map(\.payload), [Frames.close(1008, "enough")])
        XCTAssertNil(try ws.receive())
    }

    func testACloseThatIsNeverAnsweredEndsAfterItsTimeout() throws {
        let (ours, theirs) = try socketPair()
        defer { ours.close(); theirs.close() }
        let ws = WebSocket(stream: ours, role: .client)
        try ws.close(code: .normal, timeout: 0.2)
        XCTAssertEqual(ws.state, .closed)
        XCTAssertEqual(ws.closeCode, .abnormal)
        let got = try theirs.recv(timeout: 5)
        XCTAssertEqual(Frames.parse(got).first?.payload, Frames.close(1000))
    }

    // MARK: - Greenlets

    func testAKillWhileReceivingLosesNothingAndTheNextReceiveGetsTheWholeMessage() throws {
        let (ours, theirs) = try socketPair()
        defer { ours.close(); theirs.close() }
        let ws = WebSocket(stream: ours, role: .client)
        let frame = Frames.frame(0x1, Array(String(repeating: "whole ", count: 50).utf8))
        try theirs.sendAll(Array(frame[0..<3]))   // half the header
        let receiver = Greenlet.spawn { try ws.receive() }
        try Green.sleep(0)   // it reads the 3 bytes and waits
        try theirs.sendAll(Array(frame[3..<100]))
        try Green.sleep(0)
        try receiver.kill()
        XCTAssertTrue(receiver.error is GreenletExit)
        try theirs.sendAll(Array(frame[100...]))
        XCTAssertEqual(try ws.receive(timeout: 5), .text(String(repeating: "whole ", count: 50)))
        XCTAssertEqual(ws.state, .open)
    }

    func testOneGreenletReceivesWhileAnotherSendsAndASecondReceiverIsRefused() throws {
        let (ours, theirs) = try socketPair()
        defer { ours.close(); theirs.close() }
        let ws = WebSocket(stream: ours, role: .client)
        let receiver = Greenlet.spawn { try ws.receive(timeout: 5) }
        try Green.sleep(0)
        XCTAssertThrowsError(try ws.receive()) { XCTAssertEqual(($0 as? WebSocketError)?.description, WebSocketError(.busy).description) }
        try ws.send(text: "while receiving")
        let peer = WebSocket(stream: theirs, role: .server)
        XCTAssertEqual(try peer.receive(timeout: 5), .text("while receiving"))
        try peer.send(text: "answer")
        XCTAssertEqual(try receiver.get(timeout: 5), .text("answer"))
    }

    func testAForLoopEndsAtTheCloseAndKeepsAnErrorThatEndsItEarly() throws {
        let clean = WebSocket(stream: FrameScript(Frames.client(0x1, [0x61]) + Frames.client(0x2, [1])
                                                     + Frames.client(0x8, Frames.close(1000))), role: .server)
        var got: [WebSocket.Message] = []
        for message in clean { got.append(message) }
        XCTAssertEqual(got, [.text("a"), .binary([1])])
        XCTAssertNil(clean.error)
        let broken = WebSocket(stream: FrameScript(Frames.client(0x1, [0x61]) + Frames.client(0x1, [0xFF])), role: .server)
        got = []
        for message in broken { got.append(message) }
        XCTAssertEqual(got, [.text("a")])
        XCTAssertEqual((broken.error as? WebSocketError)?.closeCode, .invalidPayload)
    }

    // MARK: - Handshake, server and client of ours

    func testOurClientAndServerExchangeEveryKindOfMessageOnLoopback() throws {
        let seen = Locked<[String]>([])
        try withEchoServer(seen: seen) { port in
            let ws = try WebSocket.connect(url: "ws://127.0.0.1:\(port)/echo", subprotocols: ["x-nope", "chat.v1"])
            XCTAssertEqual(ws.subprotocol, "chat.v1")
            try ws.send(text: "héllo")
            XCTAssertEqual(try ws.receive(timeout: 5), .text("héllo"))
            let big = (0..<70_000).map { UInt8(truncatingIfNeeded: $0) }
            try ws.send(binary: big, fragmentSize: 16_384)
            XCTAssertEqual(try ws.receive(timeout: 5), .binary(big))
            try ws.ping(Array("p1".utf8))
            try ws.send(text: "after ping")
            XCTAssertEqual(try ws.receive(timeout: 5), .text("after ping"))
            XCTAssertEqual(ws.pongsReceived, 1)
            XCTAssertEqual(ws.lastPong, Array("p1".utf8))
            try ws.close(code: WebSocket.CloseCode(4321), reason: "done here")
            XCTAssertEqual(ws.closeCode, WebSocket.CloseCode(4321), "echoed by the server")
            XCTAssertEqual(ws.state, .closed)
        }
        XCTAssertEqual(seen.withLock { $0 }, ["close 4321 done here"])
    }

    func testHTTPClientOpensAWebSocketWithItsOptions() throws {
        try withEchoServer(seen: Locked([])) { port in
            var options = HTTPClient.Options()
            options.userAgent = "ws-test-agent"
            let client = HTTPClient(options: options)
            let ws = try client.webSocket("ws://127.0.0.1:\(port)/agent")
            XCTAssertEqual(try ws.receive(timeout: 5), .text("ws-test-agent"))
            try ws.close()
        }
    }

    func testUpgradeRequestsThatDoNotQualifyAreRefusedWithTheirStatus() throws {
        let base: HTTPHeaders = ["Host": "a", "Upgrade": "websocket", "Connection": "keep-alive, Upgrade",
                                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"]
        func answer(_ method: String = "GET", _ change: (inout HTTPHeaders) -> Void = { _ in }) -> HTTPResponse {
            var headers = base
            change(&headers)
            return WebSocket.upgradeResponse(for: HTTPRequest(method: method, headers: headers)) { _ in }
        }
        let ok = answer()
        XCTAssertEqual(ok.status, 101)
        XCTAssertEqual(ok.headers["Sec-WebSocket-Accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertNotNil(ok.upgrade)
        XCTAssertEqual(answer("POST").status, 405)
        XCTAssertEqual(answer { $0.remove("Upgrade") }.status, 426)
        XCTAssertEqual(answer { $0.set("Upgrade", "h2c") }.status, 400)
        XCTAssertEqual(answer { $0.set("Connection", "keep-alive") }.status, 400)
        let version = answer { $0.set("Sec-WebSocket-Version", "8") }
        XCTAssertEqual(version.status, 426)
        XCTAssertEqual(version.headers["Sec-WebSocket-Version"], "13")
        XCTAssertEqual(answer { $0.set("Sec-WebSocket-Key", "c2hvcnQ=") }.status, 400)
        XCTAssertEqual(answer { $0.remove("Sec-WebSocket-Key") }.status, 400)
        var old = HTTPRequest(headers: base)
        old.version = (1, 0)
        XCTAssertEqual(WebSocket.upgradeResponse(for: old) { _ in }.status, 400)
    }

    func testTheClientReportsARefusalWithItsStatusAndAWrongAcceptValue() throws {
        try withEchoServer(seen: Locked([])) { port in
            XCTAssertThrowsError(try WebSocket.connect(url: "ws://127.0.0.1:\(port)/forbidden")) { error in
                guard case .rejected(let status, _)? = (error as? WebSocketError)?.kind else { return XCTFail("\(error)") }
                XCTAssertEqual(status, 403)
            }
        }
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let fake = Greenlet.spawn {
            let (s, _) = try listener.accept(timeout: 5)
            defer { s.close() }
            _ = try BufferedReader(s).read(until: Array("\r\n\r\n".utf8), timeout: 5)
            try s.sendAll("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        }
        XCTAssertThrowsError(try WebSocket.connect(url: "ws://127.0.0.1:\(listener.localAddress!.port)/")) { error in
            guard case .handshake(let why)? = (error as? WebSocketError)?.kind else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("Sec-WebSocket-Accept"), why)
        }
        _ = try fake.get(timeout: 5)
        XCTAssertThrowsError(try WebSocket.connect(url: "http://127.0.0.1/")) { error in
            guard case .invalidURL? = (error as? WebSocketError)?.kind else { return XCTFail("\(error)") }
        }
    }

    // MARK: - Helpers

    /// A connected pair of loopback sockets.
    private func socketPair() throws -> (Socket, Socket) {
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let a = try Socket.connect(host: "127.0.0.1", port: listener.localAddress!.port, timeout: 5)
        let (b, _) = try listener.accept(timeout: 5)
        return (a, b)
    }

    /// An HTTP server on loopback: /echo echoes (subprotocol chat.v1 if
    /// offered) and notes the close code it ends with in `seen`, /agent
    /// sends the User-Agent it was asked with, /forbidden answers 403.
    private func withEchoServer(seen: Locked<[String]>, _ body: (UInt16) throws -> Void) throws {
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { request in
            switch request.path {
            case "/echo":
                return WebSocket.upgradeResponse(for: request, subprotocols: ["chat.v1"]) { ws in
                    while let message = try ws.receive(timeout: 10) { try ws.send(message) }
                    seen.withLock { $0.append("close \(ws.closeCode?.rawValue ?? 0) \(ws.closeReason)") }
                }
            case "/agent":
                let agent = request.headers["User-Agent"] ?? ""
                return WebSocket.upgradeResponse(for: request) { ws in
                    try ws.send(text: agent)
                    while try ws.receive(timeout: 10) != nil {}
                }
            default:
                return HTTPResponse(status: 403, text: "no")
            }
        }
        try whileServing(server, body)
    }
}
