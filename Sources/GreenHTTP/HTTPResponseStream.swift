import Foundation
import Green

/// A response whose body is read as it arrives (`HTTPClient.open`): a
/// download of any size in constant memory.
///
/// ```swift
/// let download = try client.open(url: "http://127.0.0.1:8080/big.iso")
/// defer { download.close() }
/// while let piece = try download.next() { try file.write(piece) }
/// ```
///
/// The body comes decoded (gzip, deflate) in pieces as the connection
/// delivers them (at most 64 KiB each). Once the body has been read to its
/// end, the connection goes back to the client's pool for reuse; `close()`
/// before the end closes it instead. Each read waits at most the client's
/// `readTimeout`, and a kill or an enclosing timeout reaches it. A body cut
/// short by the server, or one that does not decode, throws
/// `HTTPClientError`. Confined to the client's hub thread, like the client.
public final class HTTPResponseStream: Sequence {
    /// Status, reason and headers (trailers added once the body ended);
    /// `body` stays empty, `bodyBytes` counts what was read.
    public private(set) var response: HTTPClientResponse
    /// The body was read to its end.
    public private(set) var isComplete = false
    /// What ended the last `for` loop over this stream early, if anything
    /// but the body's end (a `for` loop cannot throw from its iterator).
    public private(set) var error: (any Error)?

    /// The exchange the body comes from (nil: a response read whole).
    private let call: HTTPClientCall?
    private let url: String
    private let decoder: StreamingDecoder
    private let observe: ((HTTPExchange) throws -> Void)?
    private var closed = false
    /// Decoded bytes not yet handed out.
    private var pending: [UInt8] = []
    private var pendingStart = 0
    /// Encoded bytes not yet decoded (decoded a few KiB at a time, so
    /// that a highly compressed body cannot fill memory in one step).
    private var encoded: [UInt8] = []
    private var encodedStart = 0

    /// At most this many decoded bytes per piece.
    static let pieceLimit = 64 * 1024
    /// Encoded bytes decoded per step.
    private static let decodeStep = 4 * 1024

    /// The client's `limits.maxBodyBytes`: what `readAll()` keeps by default.
    public let limit: Int

    init(call: HTTPClientCall, response: HTTPClientResponse, decompress: Bool,
         observe: ((HTTPExchange) throws -> Void)?, limit: Int) throws {
        self.call = call
        url = call.url
        self.limit = limit
        self.response = response
        self.response.streamed = true
        self.observe = observe
        do {
            decoder = try StreamingDecoder(encoding: decompress ? response.headers["Content-Encoding"] ?? "" : "")
        } catch {
            call.release(keep: false)
            throw HTTPClientError(url: url, kind: .decoding("\(error)"))
        }
    }

    /// A response already read whole (a redirect that was not followed):
    /// its body is handed out from memory.
    init(whole response: HTTPClientResponse, url: String, limit: Int) {
        call = nil
        self.url = url
        self.limit = limit
        self.response = response
        self.response.body = []
        self.response.streamed = true
        observe = nil
        decoder = try! StreamingDecoder(encoding: "")
        pending = response.body
        isComplete = true
    }

    deinit {
        if !isComplete { call?.release(keep: false) }
    }

    /// The next piece of the body (decoded, at most 64 KiB), or nil at its
    /// end, waiting for it (blocking only the calling greenlet). Throws
    /// `HTTPClientError` when the connection fails, times out or the body
    /// is malformed, the interrupt when the greenlet is killed or an
    /// enclosing timeout expires, or what the `exchange` closure threw at
    /// the end; the stream is then closed.
    public func next() throws -> [UInt8]? {
        do {
            guard try fillPending() else { return nil }
            let end = Swift.min(pending.count, pendingStart + HTTPResponseStream.pieceLimit)
            let piece = Array(pending[pendingStart..<end])
            pendingStart = end
            response.bodyBytes += piece.count
            return piece
        } catch {
            fail()
            throw error
        }
    }

    /// Reads body bytes into `buffer` (waiting until there are some);
    /// 0 at the end of the body. Blocks and throws as `next()` does.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !buffer.isEmpty else { return 0 }
        do {
            guard try fillPending() else { return 0 }
            let n = Swift.min(buffer.count, pending.count - pendingStart)
            pending.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[pendingStart..<(pendingStart + n)])) }
            pendingStart += n
            response.bodyBytes += n
            return n
        } catch {
            fail()
            throw error
        }
    }

    /// The rest of the body, at most `limit` bytes (more throws
    /// `.parse(.bodyTooLarge)` and closes the stream). Blocks and throws
    /// as `next()` does.
    public func readAll(limit: Int? = nil) throws -> [UInt8] {
        let limit = limit ?? self.limit
        return try collectBody(limit: limit, next: next) {
            close()
            return HTTPClientError(url: url, kind: .parse(HTTPParseError(kind: .bodyTooLarge(limit: limit))))
        }
    }

    /// Stops reading: the connection is closed (not reused) unless the
    /// body had ended. Closing twice does nothing. Never blocks.
    public func close() {
        guard !closed else { return }
        closed = true
        if !isComplete {
            response.bodyCut = true
            call?.release(keep: false)
            try? call?.report(to: observe, complete: false)
        }
    }

    /// Iterates the body's pieces; see `error` for why a loop ended early.
    public func makeIterator() -> HTTPBodyIterator {
        HTTPBodyIterator(nextPiece: next, failed: { [unowned self] in error = $0 })
    }

    // MARK: - Inside

    func setRedirects(_ chain: [URL]) { response.redirects = chain }

    /// Makes decoded bytes pending; false at the body's end.
    private func fillPending() throws -> Bool {
        while true {
            if pendingStart < pending.count { return true }
            pending.removeAll(keepingCapacity: true)
            pendingStart = 0
            if isComplete || closed { return false }
            if encodedStart < encoded.count {
                let end = Swift.min(encoded.count, encodedStart + HTTPResponseStream.decodeStep)
                try decode(encoded[encodedStart..<end])
                encodedStart = end
                continue
            }
            encoded.removeAll(keepingCapacity: true)
            encodedStart = 0
            guard let call else { return false }
            let body = call.parser.takeStreamedBody()
            if !body.isEmpty {
                if decoder.isIdentity {
                    try decode(body[...])
                } else {
                    encoded = body
                }
                continue
            }
            if let done = call.parser.takeResponses().last(where: { !(100..<200).contains($0.status) }) {
                try end(done)
                continue
            }
            if call.atEnd {
                // The parser was told of the end and completed nothing.
                throw HTTPClientError(url: url, kind: .parse(HTTPParseError(kind: .truncated)),
                                      bytesReceived: call.received)
            }
            _ = try call.fill()
        }
    }

    private func decode(_ bytes: ArraySlice<UInt8>) throws {
        do {
            _ = try bytes.withUnsafeBytes { raw in
                try decoder.push(raw) { piece in
                    pending.append(contentsOf: piece)
                    return true
                }
            }
        } catch let e as ContentDecoding.Failure {
            throw HTTPClientError(url: url, kind: .decoding("\(e)"))
        }
    }

    /// The response ended (`done` holds its trailers).
    private func end(_ done: HTTPResponse) throws {
        do { try decoder.finish() } catch { throw HTTPClientError(url: url, kind: .decoding("\(error)")) }
        response.headers = done.headers
        isComplete = true
        call?.release(keep: call?.keepAlive ?? false)
        try call?.report(to: observe, complete: true)
    }

    private func fail() {
        closed = true
        response.bodyCut = true
        call?.release(keep: false)
    }
}
