import Green

/// A request's body as a streaming handler reads it
/// (`HTTPServer(on:streamingHandler:)`): pieces as the client sends them,
/// an upload of any size in constant memory.
///
/// ```swift
/// let server = try HTTPServer(on: address) { request, body in
///     var hash = SHA256()
///     while let piece = try body.next() { hash.update(piece) }
///     return HTTPResponse(text: hash.hex)
/// }
/// ```
///
/// A request with `Expect: 100-continue` gets its "100 Continue" with the
/// handler's first read, so a handler that answers without reading (a
/// 401, a 413) spares the client the upload; the connection is then
/// closed after the answer. What the handler leaves unread is read and
/// dropped after it returns (up to `limits.maxBodyBytes`; more closes the
/// connection). Each read waits at most `bodyReadTimeout`. A body the
/// client cuts short or malforms throws `HTTPBodyReadError` (and the
/// server answers a malformed one with its 4xx itself); a kill or an
/// enclosing timeout reaches every read. Valid only inside the handler,
/// on its greenlet.
public final class HTTPRequestBodyStream: Sequence {
    /// The request asked for "100 Continue" before sending its body.
    public let expectsContinue: Bool
    /// The body was read to its end.
    public private(set) var isComplete = false
    /// Body bytes handed out so far.
    public private(set) var bytesRead = 0
    /// What ended the last `for` loop over this stream early, if anything
    /// but the body's end.
    public private(set) var error: (any Error)?

    private unowned let connection: HTTPConnection
    private var pending: [UInt8] = []
    private var pendingStart = 0
    private var returned = false
    /// The connection ended under the reader.
    private(set) var ended = false

    init(connection: HTTPConnection, expectsContinue: Bool) {
        self.connection = connection
        self.expectsContinue = expectsContinue
    }

    /// The next piece of the body (at most 64 KiB), or nil at its end,
    /// waiting for the client to send it (blocking only the handler's
    /// greenlet, at most `bodyReadTimeout`). Throws `HTTPBodyReadError`
    /// when the client closes, resets, stalls or malforms the body, or
    /// when called after the handler returned; the interrupt when the
    /// greenlet is killed or an enclosing timeout expires.
    public func next() throws -> [UInt8]? {
        guard try fill() else { return nil }
        let end = Swift.min(pending.count, pendingStart + 64 * 1024)
        let piece = Array(pending[pendingStart..<end])
        pendingStart = end
        bytesRead += piece.count
        return piece
    }

    /// Reads body bytes into `buffer` (waiting until there are some);
    /// 0 at the body's end. Blocks and throws as `next()` does.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !buffer.isEmpty, try fill() else { return 0 }
        let n = Swift.min(buffer.count, pending.count - pendingStart)
        pending.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[pendingStart..<(pendingStart + n)])) }
        pendingStart += n
        bytesRead += n
        return n
    }

    /// The rest of the body, at most `limit` bytes (more throws
    /// `HTTPBodyReadError`). Blocks and throws as `next()` does.
    public func readAll(limit: Int) throws -> [UInt8] {
        try collectBody(limit: limit, next: next) {
            HTTPBodyReadError(description: "request body larger than \(limit) bytes")
        }
    }

    /// Iterates the body's pieces; see `error` for why a loop ended early.
    public func makeIterator() -> HTTPBodyIterator {
        HTTPBodyIterator(nextPiece: next, failed: { [unowned self] in error = $0 })
    }

    // MARK: - For the connection

    func handlerReturned() { returned = true }

    /// Reads and drops the rest, up to `limit` bytes; false when the
    /// body is longer, or the connection ended.
    func discard(upTo limit: Int) throws -> Bool {
        var dropped = 0
        while !isComplete {
            guard !ended, dropped <= limit else { return false }
            pending.removeAll(keepingCapacity: true)
            pendingStart = 0
            guard try fill(afterReturn: true) else { break }
            dropped += pending.count
        }
        return !ended
    }

    /// Makes body bytes pending; false at the body's end.
    private func fill(afterReturn: Bool = false) throws -> Bool {
        if returned && !afterReturn {
            throw HTTPBodyReadError(description: "the request body was read after the handler returned")
        }
        while true {
            if pendingStart < pending.count { return true }
            pending.removeAll(keepingCapacity: true)
            pendingStart = 0
            if isComplete { return false }
            if ended { throw HTTPBodyReadError(description: "request body: \(connection.endReason)") }
            let body = connection.parser.takeStreamedBody()
            if !body.isEmpty {
                pending = body
                continue
            }
            if !connection.parser.takeRequests().isEmpty {
                isComplete = true
                continue
            }
            if expectsContinue { try connection.sendContinue() }
            if try !connection.pumpBody() { ended = true }
        }
    }
}

/// A streamed request body that could not be read to its end: the client
/// closed, reset, stalled or sent malformed framing.
public struct HTTPBodyReadError: Error, CustomStringConvertible {
    /// What happened to the body, in a sentence.
    public let description: String
}
