import Green

/// A `ByteStream` that hands out scripted chunks, one per `recv` (cut to
/// the caller's buffer), then the end of the stream, or `endError`, or a
/// wait nobody ends (`parkAtEnd`, for kills). Records what it is given.
public final class ScriptedStream: ByteStream {
    private var chunks: [[UInt8]]
    private var index = 0
    private var offset = 0
    public var endError: (any Error)?
    public var parkAtEnd = false
    /// The size of each buffer `recv` was given.
    public private(set) var recvBufferSizes: [Int] = []
    /// Each `sendAll`'s bytes.
    public private(set) var sends: [[UInt8]] = []
    public var sendError: (any Error)?

    public init(_ chunks: [[UInt8]]) { self.chunks = chunks.filter { !$0.isEmpty } }
    public convenience init(_ text: String) { self.init([Array(text.utf8)]) }

    public func recv(into buffer: UnsafeMutableRawBufferPointer, timeout: Double?) throws -> Int {
        precondition(!buffer.isEmpty, "recv with an empty buffer")
        recvBufferSizes.append(buffer.count)
        guard index < chunks.count else {
            if let endError { throw endError }
            if parkAtEnd { try Event().wait() }
            return 0
        }
        let chunk = chunks[index]
        let n = min(buffer.count, chunk.count - offset)
        chunk.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
        offset += n
        if offset == chunk.count {
            index += 1
            offset = 0
        }
        return n
    }

    public func sendAll(_ bytes: UnsafeRawBufferPointer, timeout: Double?) throws {
        if let sendError { throw sendError }
        sends.append(Array(bytes))
        _ = timeout
    }
}

/// Every way to cut `bytes` into non-empty chunks: whole, in two and in
/// three at every position, and byte by byte.
public func everySplit(_ bytes: [UInt8]) -> [[[UInt8]]] {
    var result: [[[UInt8]]] = [[bytes]]
    let n = bytes.count
    for i in 1..<n { result.append([Array(bytes[..<i]), Array(bytes[i...])]) }
    for i in 1..<n {
        for j in (i + 1)..<max(i + 1, n) {
            result.append([Array(bytes[..<i]), Array(bytes[i..<j]), Array(bytes[j...])])
        }
    }
    result.append(bytes.map { [$0] })
    return result
}
