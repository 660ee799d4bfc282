/// Writes to a `ByteStream` (`Socket`, `TLSSocket`) through one buffer:
/// small writes are gathered and sent together by `flush()` (or when the
/// buffer is full), so a reply made of many pieces costs one system call.
///
/// ```swift
/// let writer = BufferedWriter(socket)
/// for item in items { try writer.write("\(item)\r\n") }
/// try writer.flush()
/// ```
///
/// A write that fits in the free space is copied and does not block. One
/// that does not fit sends the buffered bytes first; then a write of at
/// least `capacity` bytes goes straight to the stream, a smaller one is
/// buffered. Bytes reach the stream in the order written.
///
/// Calls that send block only the calling greenlet; `timeout` is passed to
/// the stream's `sendAll` (nil: the stream's default). They throw the
/// stream's errors, or the interrupt when the greenlet is killed or an
/// enclosing timeout expires. When a send throws, part of the bytes may
/// have gone: the buffered bytes are dropped (sending them again could
/// repeat some), and the connection is best treated as broken.
///
/// Nothing is sent when the writer is released: bytes not flushed by then
/// are lost (a `deinit` can neither block to send them nor throw). Call
/// `flush()` before letting it go. Confined to the thread that made it;
/// one greenlet at a time may write (another, while a send waits, gets
/// `SocketError` `.busy`).
public final class BufferedWriter {
    /// The stream written to. Writing it directly jumps ahead of the
    /// buffered bytes.
    public let stream: any ByteStream
    /// The buffer's size in bytes.
    public let capacity: Int

    // `storage` is this writer's memory (freed in deinit). Invariant: the
    // unsent bytes are storage[0..<count]. While a `sender` waits, the
    // stream reads `storage`, so no other call may change it.
    private let storage: UnsafeMutablePointer<UInt8>
    private var count = 0
    /// The greenlet whose send is reading `storage`, if any.
    private var sender: AnyGreenlet?

    /// A writer to `stream` with a buffer of `capacity` bytes (at least 16).
    public init(_ stream: any ByteStream, capacity: Int = 16 * 1024) {
        self.stream = stream
        self.capacity = max(16, capacity)
        storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    /// Bytes written and not yet sent.
    public var bufferedCount: Int { count }

    /// Writes `bytes`: buffered, or sent now; see the type's description.
    public func write(_ bytes: UnsafeRawBufferPointer, timeout: Double? = nil) throws {
        if bytes.count <= capacity - count {
            try checkIdle()
            if !bytes.isEmpty { (storage + count).update(from: bytes.assumingMemoryBound(to: UInt8.self).baseAddress!,
                                                         count: bytes.count) }
            count += bytes.count
            return
        }
        try flush(timeout: timeout)
        if bytes.count >= capacity {
            try send(bytes, timeout: timeout)
        } else {
            (storage + count).update(from: bytes.assumingMemoryBound(to: UInt8.self).baseAddress!, count: bytes.count)
            count += bytes.count
        }
    }

    /// Writes `bytes`; see `write(_:timeout:)`.
    public func write(_ bytes: [UInt8], timeout: Double? = nil) throws {
        try bytes.withUnsafeBytes { try write($0, timeout: timeout) }
    }

    /// Writes `text` as UTF-8; see `write(_:timeout:)`.
    public func write(_ text: String, timeout: Double? = nil) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0), timeout: timeout) }
    }

    /// Sends the buffered bytes, if any. When it throws, they are dropped
    /// (part of them may have been sent).
    public func flush(timeout: Double? = nil) throws {
        try checkIdle()
        guard count > 0 else { return }
        let n = count
        count = 0
        try send(UnsafeRawBufferPointer(start: storage, count: n), timeout: timeout)
    }

    private func send(_ bytes: UnsafeRawBufferPointer, timeout: Double?) throws {
        try checkIdle()
        sender = Hub.current.current
        defer { sender = nil }
        try stream.sendAll(bytes, timeout: timeout)
    }

    /// Refuses a call while another greenlet's send reads the buffer.
    private func checkIdle() throws {
        if let sender {
            throw SocketError(operation: "buffered write", reason: .busy(waiter: sender.name))
        }
    }
}
