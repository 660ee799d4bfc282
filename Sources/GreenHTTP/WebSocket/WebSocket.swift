import Glibc
import Green
import GreenTLS

// A WebSocket (RFC 6455) over any `ByteStream`: a socket, TLS, or the
// connection the HTTP server hands over after a 101.
//
// Receiving is a loop over frames read through one `BufferedReader`. Every
// piece of a frame in progress (the header bytes so far, the payload
// bytes so far, the fragments of the message so far, the UTF-8 state of a
// text message) lives in the object, never on the stack of the call, and
// each read consumes bytes only once they are stored: a receive that is
// killed, or whose wait times out, loses nothing, and the next receive
// continues the same frame.
//
// Sending goes through one `BufferedWriter` under two locks: `frameLock`
// keeps frames whole (one frame at a time on the wire), `messageLock`
// keeps the fragments of one message together. A control frame takes only
// `frameLock`, so a pong (sent by the receiving greenlet when a ping
// arrives) or a close can go between the fragments of a long message, as
// section 5.4 allows. A frame that is interrupted after it began to go out
// leaves the byte stream unframed: the connection is ended.
//
// The close handshake (section 7): whoever closes first sends a close
// frame (state `.closing`) and reads until the peer's close frame comes
// back; whoever receives a close frame first answers with the same code.
// Either way the connection then ends (`.closed`). A peer that breaks the
// protocol gets a close frame with the code for what it broke, and the
// connection ends at once ("fail the WebSocket connection", 7.1.7).

/// A WebSocket connection (RFC 6455), client or server side, on greenlets.
///
/// ```swift
/// let ws = try WebSocket.connect(url: "ws://127.0.0.1:8080/chat")
/// try ws.send(text: "hello")
/// while let message = try ws.receive() { print(message) }   // nil after the close handshake
/// ```
///
/// Every blocking call blocks only the calling greenlet and throws the
/// interrupt when the greenlet is killed or an enclosing timeout expires;
/// `timeout` bounds each wait for the stream (nil: `options`' default),
/// and a wait that times out throws `SocketError` `.timedOut` and leaves
/// the WebSocket usable. When the connection fails (a protocol violation,
/// the peer going away without a close frame), the call throws a
/// `WebSocketError`, which `failure` keeps; later receives throw it again.
///
/// Pings are answered with a pong by `receive` as they arrive; pongs are
/// counted (`pongsReceived`). Messages sent by the peer after its close
/// frame are not read; messages that arrive after ours are still returned.
///
/// Confined to the thread (hub) that made it; not `Sendable`. One greenlet
/// may receive while others send: sends from several greenlets are
/// serialized whole (each message's frames stay together), a second
/// receiver at the same time gets `WebSocketError` `.busy`.
public final class WebSocket {
    /// Which end of the connection this side is; it decides masking.
    public enum Role: Sendable {
        /// Masks what it sends; refuses masked frames.
        case client
        /// Sends unmasked; refuses unmasked frames.
        case server
    }

    /// Where the connection is in its life.
    public enum State: Sendable, Equatable {
        /// Messages go both ways.
        case open
        /// This side sent its close frame and waits for the peer's; no
        /// more messages may be sent.
        case closing
        /// The close handshake ended, or the connection failed or ended.
        case closed
    }

    /// Client or server.
    public let role: Role
    /// Its limits and timeouts.
    public let options: Options
    /// The subprotocol agreed in the handshake (Sec-WebSocket-Protocol),
    /// if any.
    public let subprotocol: String?
    /// Open, closing (our close frame sent) or closed.
    public private(set) var state = State.open
    /// The code of the peer's close frame (`.noStatus` if it carried
    /// none); when the connection failed, the code we sent for it, or
    /// `.abnormal` (1006) if it ended without a close frame. Nil while
    /// open.
    public private(set) var closeCode: CloseCode?
    /// The reason that came with `closeCode` (for a failure, what went
    /// wrong).
    public private(set) var closeReason = ""
    /// The error that failed the connection, if it failed; thrown again by
    /// every later receive.
    public private(set) var failure: WebSocketError?
    /// The error that ended a `for` loop over the WebSocket early, other
    /// than an interrupt; nil if no loop ended that way.
    public internal(set) var error: (any Error)?
    /// Pings received (each answered with a pong while open).
    public private(set) var pingsReceived = 0
    /// Pongs received.
    public private(set) var pongsReceived = 0
    /// The payload of the last pong received (empty before the first).
    public private(set) var lastPong: [UInt8] = []

    /// The stream, read through the WebSocket's buffer.
    let reader: BufferedReader
    private let writer: BufferedWriter
    /// Ends the connection (both directions) once the WebSocket is closed.
    private let endTransport: () -> Void
    /// Run when the WebSocket is released (a client closes its socket).
    private let release: (() -> Void)?
    private let frameLock = Lock()
    private let messageLock = Lock()
    private var receiving = false

    // The frame being read. Raw memory, not Swift arrays: a read parks the
    // greenlet with a pointer into these, which must not be a Swift access
    // left open across a switch.
    private let header = UnsafeMutableRawPointer.allocate(byteCount: WebSocketFrame.maxHeaderSize, alignment: 8)
    private var headerFilled = 0
    private var frame: WebSocketFrame?
    private var frameFilled = 0
    private let control = UnsafeMutableRawPointer.allocate(byteCount: WebSocketFrame.maxControlPayload, alignment: 8)
    // The data message being reassembled: message[0..<messageCount].
    private var message: UnsafeMutableRawPointer
    private var messageCapacity = 256
    private var messageCount = 0
    private var messageOpcode: WebSocketFrame.Opcode?
    private var validator = WebSocketUTF8Validator()

    // Sending (under frameLock).
    private let outHeader = UnsafeMutableRawPointer.allocate(byteCount: WebSocketFrame.maxHeaderSize, alignment: 8)
    private var scratch: UnsafeMutableRawPointer?
    private var scratchCapacity = 0
    private static let maskChunk = 64 * 1024
    private let keys = UnsafeMutablePointer<UInt32>.allocate(capacity: 64)
    private var keysLeft = 0

    /// A WebSocket over `stream`, which has already been upgraded (the
    /// handshake is the caller's). Ending the connection is left to
    /// whoever owns `stream`: `state` says when. Never blocks; the
    /// WebSocket belongs to the thread of `stream`.
    public convenience init(stream: any ByteStream, role: Role, options: Options = Options(), subprotocol: String? = nil) {
        self.init(reader: BufferedReader(stream, capacity: options.bufferCapacity), role: role, options: options,
                  subprotocol: subprotocol, endTransport: {}, release: nil)
    }

    /// A WebSocket reading through `reader` (which may hold bytes that
    /// followed the handshake).
    init(reader: BufferedReader, role: Role, options: Options, subprotocol: String?,
         endTransport: @escaping () -> Void, release: (() -> Void)?) {
        self.reader = reader
        writer = BufferedWriter(reader.stream, capacity: options.bufferCapacity)
        self.role = role
        self.options = options
        self.subprotocol = subprotocol
        self.endTransport = endTransport
        self.release = release
        message = .allocate(byteCount: messageCapacity, alignment: 8)
    }

    deinit {
        header.deallocate()
        control.deallocate()
        message.deallocate()
        outHeader.deallocate()
        scratch?.deallocate()
        keys.deallocate()
        release?()
    }

    // MARK: - Receiving

    /// The next message, its fragments joined; nil once the close
    /// handshake is over (the peer's close frame answered, or ours
    /// answered), and from then on. Answers pings and counts pongs on the
    /// way.
    ///
    /// Throws `WebSocketError` `.protocolViolation` when the peer breaks
    /// the protocol or a limit (the connection is then failed with the
    /// code named: 1002 for a bad frame, 1007 for text that is not UTF-8,
    /// 1009 for a frame or message over `options`' limits), and
    /// `.endedWithoutClose` when the connection ends or breaks before the
    /// close handshake; `.busy` if another greenlet is receiving. A wait
    /// that times out (`timeout` or `options.receiveTimeout`) throws
    /// `SocketError` `.timedOut`; a kill or an enclosing timeout throws the
    /// interrupt. Neither loses a byte: the next call continues.
    public func receive(timeout: Double? = nil) throws -> Message? {
        if let failure { throw failure }
        if state == .closed { return nil }
        if receiving { throw WebSocketError(.busy) }
        receiving = true
        defer { receiving = false }
        let wait = timeout ?? options.receiveTimeout
        while true {
            if frame == nil { try readHeader(wait) }
            try readPayload(wait)
            if let message = try finishFrame() { return message }
            if state == .closed { return nil }
        }
    }

    /// Reads the next frame's header, checks it and makes room for its
    /// payload. The header bytes read so far stay in `header` across an
    /// interrupt.
    private func readHeader(_ wait: Double?) throws {
        // The first two bytes tell the header's size; an earlier call may
        // have read them (or more) already.
        func size() -> Int {
            headerFilled < 2 ? 2 : WebSocketFrame.headerSize(first: header.load(as: UInt8.self),
                                                             second: header.load(fromByteOffset: 1, as: UInt8.self))
        }
        while headerFilled < size() {
            let n = try readStream(into: header + headerFilled, count: size() - headerFilled, wait)
            if n == 0 { throw endWithoutClose(headerFilled == 0 ? "" : "the stream ended inside a frame header") }
            headerFilled += n
        }
        headerFilled = 0
        let f = WebSocketFrame(parsing: header)
        try check(f)
        frame = f
        frameFilled = 0
    }

    /// Fails the connection if `f` breaks a rule of RFC 6455 or a limit;
    /// otherwise makes room for its payload.
    private func check(_ f: WebSocketFrame) throws {
        if f.reserved != 0 {
            try violate(.protocolError, "reserved bits set (0x\(String(f.reserved >> 4, radix: 16))) with no extension agreed")
        }
        guard let opcode = WebSocketFrame.Opcode(rawValue: f.opcodeBits) else {
            try violate(.protocolError, "reserved opcode 0x\(String(f.opcodeBits, radix: 16))")
        }
        if role == .server && f.maskKey == nil { try violate(.protocolError, "an unmasked frame from the client") }
        if role == .client && f.maskKey != nil { try violate(.protocolError, "a masked frame from the server") }
        if f.length > UInt64(Int.max) { try violate(.protocolError, "a 64-bit payload length with its top bit set") }
        let length = Int(f.length)
        if opcode.isControl {
            if !f.fin { try violate(.protocolError, "a fragmented control frame (opcode 0x\(String(f.opcodeBits, radix: 16)))") }
            if length > WebSocketFrame.maxControlPayload {
                try violate(.protocolError, "a control frame of \(length) bytes (at most 125)")
            }
            return
        }
        if length > options.maxFrameSize {
            try violate(.messageTooBig, "a frame of \(length) bytes (limit \(options.maxFrameSize))")
        }
        if opcode == .continuation {
            if messageOpcode == nil { try violate(.protocolError, "a continuation frame with no message to continue") }
        } else if messageOpcode != nil {
            try violate(.protocolError, "a new message began before the last fragment of the previous one")
        }
        if length > options.maxMessageSize - messageCount {
            try violate(.messageTooBig, "a message of more than \(options.maxMessageSize) bytes")
        }
        if opcode != .continuation { messageOpcode = opcode }
        if messageCount + length > messageCapacity {
            var grown = messageCapacity
            while grown < messageCount + length { grown *= 2 }
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
            bigger.copyMemory(from: message, byteCount: messageCount)
            message.deallocate()
            message = bigger
            messageCapacity = grown
        }
    }

    /// Reads the current frame's payload to its end; the bytes read so
    /// far stay counted in `frameFilled` across an interrupt.
    private func readPayload(_ wait: Double?) throws {
        guard let f = frame else { return }
        let length = Int(f.length)
        let base = f.opcodeBits & 0x8 != 0 ? control : message + messageCount
        while frameFilled < length {
            let n = try readStream(into: base + frameFilled, count: length - frameFilled, wait)
            if n == 0 { throw endWithoutClose("the stream ended inside a frame's payload") }
            frameFilled += n
        }
    }

    /// Acts on the frame just read: a message when it completes one.
    private func finishFrame() throws -> Message? {
        guard let f = frame else { return nil }
        frame = nil
        let opcode = WebSocketFrame.Opcode(rawValue: f.opcodeBits)!
        let length = Int(f.length)
        let payload = opcode.isControl ? control : message + messageCount
        if let key = f.maskKey { WebSocketFrame.mask(payload, into: payload, count: length, key: key) }
        let bytes = UnsafeRawBufferPointer(start: payload, count: length)
        switch opcode {
        case .text, .binary, .continuation:
            let kind = messageOpcode!
            if kind == .text && !validator.validate(bytes) {
                try violate(.invalidPayload, "a text message that is not UTF-8")
            }
            messageCount += length
            guard f.fin else { return nil }
            let whole = UnsafeRawBufferPointer(start: message, count: messageCount)
            messageCount = 0
            messageOpcode = nil
            if kind == .binary { return .binary(Array(whole)) }
            if !validator.isAtBoundary {
                try violate(.invalidPayload, "a text message that ends inside a UTF-8 character")
            }
            validator = WebSocketUTF8Validator()
            return .text(String(decoding: whole, as: UTF8.self))
        case .ping:
            pingsReceived += 1
            if state == .open { try sendFrame(.pong, fin: true, bytes, timeout: options.sendTimeout) }
            return nil
        case .pong:
            pongsReceived += 1
            lastPong = Array(bytes)
            return nil
        case .close:
            try receivedClose(bytes)
            return nil
        }
    }

    /// The peer's close frame: answered with its code if we had not
    /// closed, then the connection ends.
    private func receivedClose(_ payload: UnsafeRawBufferPointer) throws {
        var code: CloseCode?
        var reason = ""
        if payload.count == 1 { try violate(.protocolError, "a close frame with a 1-byte payload") }
        if payload.count >= 2 {
            let c = CloseCode(UInt16(payload[0]) << 8 | UInt16(payload[1]))
            if !c.isSendable { try violate(.protocolError, "close code \(c.rawValue), which may not be sent") }
            let text = UnsafeRawBufferPointer(rebasing: payload[2...])
            if !WebSocketUTF8Validator.isValid(text) { try violate(.invalidPayload, "a close reason that is not UTF-8") }
            code = c
            reason = String(decoding: text, as: UTF8.self)
        }
        closeCode = code ?? .noStatus
        closeReason = reason
        if state == .open {
            state = .closing
            // Section 5.5.1: answer with the code received (none if none).
            do {
                try sendClose(code, reason: "", timeout: options.closeTimeout)
            } catch where WebSocket.isStreamError(error) {
                // It went away first; the handshake is over either way.
            } catch {
                finish()
                throw error
            }
        }
        finish()
    }

    /// One read of the stream into `p`; a broken connection becomes
    /// `endedWithoutClose`, a per-wait timeout passes through.
    private func readStream(into p: UnsafeMutableRawPointer, count: Int, _ wait: Double?) throws -> Int {
        do {
            return try reader.read(into: UnsafeMutableRawBufferPointer(start: p, count: count), timeout: wait)
        } catch let e as SocketError {
            if case .timedOut = e.reason { throw e }
            throw endWithoutClose("\(e)")
        } catch let e as TLSError {
            throw endWithoutClose("\(e)")
        }
    }

    // MARK: - Sending

    /// Sends a text message (in fragments of `fragmentSize` bytes if it
    /// is longer; nil: `options.fragmentSize`).
    ///
    /// Waits while another greenlet's message goes out. Throws
    /// `WebSocketError` `.closed` once this side has sent its close frame
    /// or the connection ended, `.endedWithoutClose` if the connection
    /// breaks; a kill, an enclosing timeout or a send timeout (`timeout`
    /// or `options.sendTimeout` per wait) after a frame began to go out
    /// ends the connection (`failure` is `.sendInterrupted`) and throws.
    public func send(text: String, fragmentSize: Int? = nil, timeout: Double? = nil) throws {
        var text = text
        try text.withUTF8 { try sendMessage(.text, UnsafeRawBufferPointer($0), fragmentSize, timeout) }
    }

    /// Sends a binary message; see `send(text:)`.
    public func send(binary: [UInt8], fragmentSize: Int? = nil, timeout: Double? = nil) throws {
        try binary.withUnsafeBytes { try sendMessage(.binary, $0, fragmentSize, timeout) }
    }

    /// Sends a binary message from memory the caller keeps valid and
    /// unchanged until the call returns; see `send(text:)`.
    public func send(binary: UnsafeRawBufferPointer, fragmentSize: Int? = nil, timeout: Double? = nil) throws {
        try sendMessage(.binary, binary, fragmentSize, timeout)
    }

    /// Sends `message` as it came: text as text, binary as binary; see
    /// `send(text:)`.
    public func send(_ message: Message, fragmentSize: Int? = nil, timeout: Double? = nil) throws {
        switch message {
        case .text(let text): try send(text: text, fragmentSize: fragmentSize, timeout: timeout)
        case .binary(let bytes): try send(binary: bytes, fragmentSize: fragmentSize, timeout: timeout)
        }
    }

    /// Sends a ping with `payload` (at most 125 bytes). Does not wait for
    /// the pong: a greenlet in `receive` counts it in `pongsReceived`.
    /// Throws as `send(text:)`.
    public func ping(_ payload: [UInt8] = [], timeout: Double? = nil) throws {
        precondition(payload.count <= WebSocketFrame.maxControlPayload, "a ping payload of more than 125 bytes")
        guard state == .open else { throw failure ?? WebSocketError(.closed) }
        try payload.withUnsafeBytes { try sendFrame(.ping, fin: true, $0, timeout: timeout ?? options.sendTimeout) }
    }

    /// Starts the close handshake with `code` and `reason` (cut to 123
    /// bytes of UTF-8 at a character boundary), then reads until the
    /// peer's close frame comes back, at most `timeout` seconds in all
    /// (nil: `options.closeTimeout`), and ends the connection. Messages
    /// that arrive meanwhile are dropped. If another greenlet is in
    /// `receive`, returns once the close frame is sent: that greenlet
    /// reads the answer (its `receive` returns nil) and ends the
    /// connection.
    ///
    /// Does nothing once closed. A connection that breaks or does not
    /// answer in time is ended all the same, without an error; throws
    /// only the interrupt (the connection is then ended too).
    public func close(code: CloseCode = .normal, reason: String = "", timeout: Double? = nil) throws {
        precondition(code.isSendable, "close code \(code.rawValue) may not be sent")
        let limit = timeout ?? options.closeTimeout
        do {
            if state == .open {
                state = .closing
                try sendClose(code, reason: reason, timeout: limit)
            }
            if receiving || state == .closed { return }
            let deadline = Hub.current.now + limit
            while state != .closed {
                let left = deadline - Hub.current.now
                if left <= 0 { break }
                _ = try receive(timeout: left)
            }
        } catch where WebSocket.isStreamError(error) {
            // Broken, violated or silent: the connection ends below.
        } catch {
            finish()
            throw error
        }
        if state != .closed {
            if closeCode == nil {
                closeCode = .abnormal
                closeReason = "no close frame came back within \(limit) s"
            }
            finish()
        }
    }

    private func sendMessage(_ opcode: WebSocketFrame.Opcode, _ bytes: UnsafeRawBufferPointer,
                             _ fragmentSize: Int?, _ timeout: Double?) throws {
        guard state == .open else { throw failure ?? WebSocketError(.closed) }
        try messageLock.acquire()
        defer { try! messageLock.release() }
        guard state == .open else { throw failure ?? WebSocketError(.closed) }
        let wait = timeout ?? options.sendTimeout
        let piece = fragmentSize ?? options.fragmentSize ?? Int.max
        precondition(piece > 0, "a fragment size must be positive")
        if bytes.count <= piece {
            try sendFrame(opcode, fin: true, bytes, timeout: wait)
            return
        }
        var at = 0
        while at < bytes.count {
            let n = Swift.min(piece, bytes.count - at)
            do {
                // A close (ours, from another greenlet) may have gone out
                // between two fragments: no data frame may follow it.
                guard state == .open else { throw failure ?? WebSocketError(.closed) }
                try sendFrame(at == 0 ? opcode : .continuation, fin: at + n == bytes.count,
                              UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)]), timeout: wait)
            } catch {
                // A message cut between fragments would make the next one
                // a protocol error: end the connection unless it is
                // closing anyway.
                if at > 0 && state == .open {
                    failure = WebSocketError(.sendInterrupted)
                    endAbnormally("a fragmented message was cut short")
                }
                throw error
            }
            at += n
        }
    }

    /// Sends a close frame carrying `code` (none if nil) and `reason`.
    private func sendClose(_ code: CloseCode?, reason: String, timeout: Double?) throws {
        var payload: [UInt8] = []
        if let code {
            payload = [UInt8(code.rawValue >> 8), UInt8(code.rawValue & 0xFF)]
            var utf8 = Array(reason.utf8)
            if utf8.count > WebSocketFrame.maxControlPayload - 2 {
                utf8.removeSubrange((WebSocketFrame.maxControlPayload - 2)...)
                while let last = utf8.last, last & 0xC0 == 0x80 { utf8.removeLast() }   // continuation bytes
                if let last = utf8.last, last >= 0xC0 { utf8.removeLast() }             // a lead byte left alone
            }
            payload += utf8
        }
        try payload.withUnsafeBytes { try sendFrame(.close, fin: true, $0, timeout: timeout) }
    }

    /// Writes one frame whole, masked for a client. A failure after the
    /// frame began to go out ends the connection.
    private func sendFrame(_ opcode: WebSocketFrame.Opcode, fin: Bool, _ payload: UnsafeRawBufferPointer,
                           timeout: Double?) throws {
        try frameLock.acquire()
        defer { try! frameLock.release() }
        if state == .closed { throw failure ?? WebSocketError(.closed) }
        let key = role == .client ? nextMaskKey() : nil
        let frame = WebSocketFrame(fin: fin, opcode: opcode, length: payload.count, maskKey: key)
        let size = frame.encode(into: outHeader)
        do {
            try writer.write(UnsafeRawBufferPointer(start: outHeader, count: size), timeout: timeout)
            if let key, payload.count > 0 {
                // Masked in chunks through a scratch buffer; each chunk
                // starts at a multiple of 4, so the key lines up.
                let chunk = Swift.min(payload.count, WebSocket.maskChunk)
                if scratchCapacity < chunk {
                    scratch?.deallocate()
                    scratch = .allocate(byteCount: chunk, alignment: 8)
                    scratchCapacity = chunk
                }
                var at = 0
                while at < payload.count {
                    let n = Swift.min(chunk, payload.count - at)
                    WebSocketFrame.mask(payload.baseAddress! + at, into: scratch!, count: n, key: key)
                    try writer.write(UnsafeRawBufferPointer(start: scratch!, count: n), timeout: timeout)
                    at += n
                }
            } else {
                try writer.write(payload, timeout: timeout)
            }
            try writer.flush(timeout: timeout)
        } catch let e as SocketError where !e.isTimeout {
            throw endWithoutClose("\(e)")
        } catch let e as TLSError {
            throw endWithoutClose("\(e)")
        } catch {
            failure = WebSocketError(.sendInterrupted)
            endAbnormally("a frame was cut short by \(error)")
            throw error
        }
    }

    /// A fresh masking key, 64 fetched at a time.
    private func nextMaskKey() -> UInt32 {
        if keysLeft == 0 {
            WebSocket.fillRandom(UnsafeMutableRawBufferPointer(start: keys, count: 64 * 4))
            keysLeft = 64
        }
        keysLeft -= 1
        return keys[keysLeft]
    }

    // MARK: - Ending

    /// Fails the connection (section 7.1.7): sends a close frame with
    /// `code` if ours has not gone yet, ends it, and throws the violation.
    private func violate(_ code: CloseCode, _ detail: String) throws -> Never {
        let violation = WebSocketError(.protocolViolation(code, detail))
        failure = violation
        closeCode = code
        closeReason = detail
        if state == .open {
            state = .closing
            do {
                try sendClose(code, reason: detail, timeout: options.closeTimeout)
            } catch where WebSocket.isStreamError(error) {
                // Could not tell the peer; it ends all the same.
            } catch {
                finish()
                throw error
            }
        }
        finish()
        throw violation
    }

    /// The connection ended or broke before the close handshake: 1006.
    private func endWithoutClose(_ detail: String) -> WebSocketError {
        let error = failure ?? WebSocketError(.endedWithoutClose(detail))
        failure = error
        endAbnormally(detail)
        return error
    }

    private func endAbnormally(_ detail: String) {
        if closeCode == nil {
            closeCode = .abnormal
            closeReason = detail
        }
        finish()
    }

    /// Marks the WebSocket closed and ends the connection, once.
    private func finish() {
        guard state != .closed else { return }
        state = .closed
        endTransport()
    }
}

extension WebSocket {
    /// Fills `buffer` from glibc's arc4random_buf: bytes from the
    /// kernel's generator, which section 5.3 asks for (a masking key the
    /// peer cannot predict).
    static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        arc4random_buf(base, buffer.count)
    }
}

fileprivate extension SocketError {
    var isTimeout: Bool {
        if case .timedOut = reason { return true }
        return false
    }
}
