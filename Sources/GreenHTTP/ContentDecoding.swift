import CZlib

/// Decodes `Content-Encoding: gzip` and `deflate` bodies through zlib,
/// refusing to expand past a limit (a small compressed body can claim
/// gigabytes). Used by the client, and by anyone holding an encoded body
/// (a gzipped sitemap file, say). Pure computations: any thread, never
/// blocking.
public enum ContentDecoding {
    /// A body that could not be decoded: an unsupported encoding, bytes
    /// zlib refuses, or more than the limit once decoded.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong, in a sentence.
        public let message: String
        /// The message.
        public var description: String { message }
    }

    /// The decoded body. `encoding` is the header's value ("gzip",
    /// "x-gzip", "deflate", "identity"); others throw. Throws `Failure`
    /// if the body does not decode or decodes to more than `limit` bytes.
    public static func decode(_ body: [UInt8], encoding: String, limit: Int) throws -> [UInt8] {
        switch encoding.lowercased().trimmed(of: " ") {
        case "", "identity":
            return body
        case "gzip", "x-gzip":
            return try inflate(body, windowBits: 15 + 16, limit: limit)
        case "deflate":
            // "deflate" is meant to be zlib-wrapped; some servers send it raw.
            if let zlib = try? inflate(body, windowBits: 15, limit: limit) { return zlib }
            return try inflate(body, windowBits: -15, limit: limit)
        default:
            throw Failure(message: "unsupported Content-Encoding \"\(encoding)\"")
        }
    }

    private static func inflate(_ input: [UInt8], windowBits: Int32, limit: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard green_inflate_init2(&stream, windowBits) == Z_OK else { throw Failure(message: "zlib: inflateInit failed") }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = uInt(inBuf.count)
            var rc: Int32 = Z_OK
            while rc == Z_OK {
                rc = chunk.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = uInt(outBuf.count)
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                if output.count + produced > limit { return Z_MEM_ERROR - 1000 }
                output.append(contentsOf: chunk[0..<produced])
                if rc == Z_BUF_ERROR && stream.avail_in == 0 { break }
            }
            return rc
        }
        if status == Z_MEM_ERROR - 1000 { throw Failure(message: "decoded body larger than \(limit) bytes") }
        guard status == Z_STREAM_END else {
            let detail = stream.msg.map { String(cString: $0) } ?? "error \(status)"
            throw Failure(message: "zlib could not decode the body: \(detail)")
        }
        return output
    }
}

extension String {
    func trimmed(of set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

/// A `Content-Encoding` decoded as the body arrives: push the encoded
/// bytes in any pieces, take the decoded ones out in pieces of at most
/// 64 KiB, then `finish` to learn whether the encoded stream was whole.
/// "deflate" is read zlib-wrapped or raw, whichever the first bytes say.
/// Never blocks; one decoder is used by one thread at a time.
public final class StreamingDecoder {
    private enum Mode { case identity, zlib(windowBits: Int32), deflateUndecided }

    private var mode: Mode
    private var stream: UnsafeMutablePointer<z_stream>?
    private var ended = false
    private var output = [UInt8](repeating: 0, count: 64 * 1024)
    /// Decoded bytes given out so far.
    public private(set) var decodedCount = 0
    /// Encoded bytes taken in, and those after the end of the compressed
    /// stream.
    private var encodedCount = 0
    private var trailing = 0
    /// Bytes after the end of a compressed stream that are ignored (some
    /// servers pad); more is an error, or a body could go on for ever
    /// without the caller seeing a byte of it.
    public static let trailingLimit = 64 * 1024
    /// Encoded bytes allowed beyond the decoded ones: compressed data that
    /// does not expand (a stream of empty deflate blocks) is cut there for
    /// the same reason.
    public static let slack = 1024 * 1024

    /// `encoding` is the header's value ("gzip", "x-gzip", "deflate",
    /// "identity" or empty); another throws `ContentDecoding.Failure`.
    public init(encoding: String) throws {
        switch encoding.lowercased().trimmed(of: " ") {
        case "", "identity": mode = .identity
        case "gzip", "x-gzip": mode = .zlib(windowBits: 15 + 16)
        case "deflate": mode = .deflateUndecided
        default: throw ContentDecoding.Failure(message: "unsupported Content-Encoding \"\(encoding)\"")
        }
    }

    /// Whether bytes pass through as they are (no content coding).
    public var isIdentity: Bool {
        if case .identity = mode { return true }
        return false
    }

    deinit {
        if let stream {
            inflateEnd(stream)
            stream.deallocate()
        }
    }

    /// Decodes `bytes`, handing the result to `sink` piece by piece; stops
    /// early (returning false) when `sink` returns false. Throws
    /// `ContentDecoding.Failure` on a corrupt stream.
    public func push(_ bytes: UnsafeRawBufferPointer, to sink: (UnsafeRawBufferPointer) throws -> Bool) throws -> Bool {
        if case .identity = mode {
            decodedCount += bytes.count
            return bytes.isEmpty ? true : try sink(bytes)
        }
        guard !bytes.isEmpty else { return true }
        if case .deflateUndecided = mode {
            // A zlib header: CM 8 in the low nibble, and the two bytes a
            // multiple of 31 (RFC 1950); anything else is raw deflate.
            let b0 = Int(bytes[0])
            let wrapped = bytes.count >= 2 ? (b0 & 0x0F == 8 && (b0 * 256 + Int(bytes[1])) % 31 == 0) : b0 & 0x0F == 8
            mode = .zlib(windowBits: wrapped ? 15 : -15)
        }
        guard case .zlib(let windowBits) = mode else { return true }
        if stream == nil {
            let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            s.initialize(to: z_stream())
            guard green_inflate_init2(s, windowBits) == Z_OK else {
                s.deallocate()
                throw ContentDecoding.Failure(message: "zlib: inflateInit failed")
            }
            stream = s
        }
        guard let stream else { return true }
        if ended {
            trailing += bytes.count
            if trailing > StreamingDecoder.trailingLimit {
                throw ContentDecoding.Failure(message: "more than \(StreamingDecoder.trailingLimit) bytes after the end of the compressed body")
            }
            return true
        }
        encodedCount += bytes.count
        if encodedCount > decodedCount + StreamingDecoder.slack {
            throw ContentDecoding.Failure(message: "the compressed body does not expand: \(encodedCount) bytes gave \(decodedCount)")
        }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(bytes.count)
        while true {
            let (rc, produced) = output.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = uInt(out.count)
                let rc = inflate(stream, Z_NO_FLUSH)
                return (rc, out.count - Int(stream.pointee.avail_out))
            }
            if rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR {
                let detail = stream.pointee.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw ContentDecoding.Failure(message: "zlib could not decode the body: \(detail)")
            }
            if produced > 0 {
                decodedCount += produced
                let more = try output.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[..<produced])) }
                if !more { return false }
            }
            if rc == Z_STREAM_END {
                ended = true
                trailing = Int(stream.pointee.avail_in)
                return true
            }
            // Everything consumed and nothing more to flush.
            if stream.pointee.avail_in == 0 && produced < output.count { return true }
            if rc == Z_BUF_ERROR && produced == 0 { return true }
        }
    }

    /// The body ended: throws when the encoded stream was cut short.
    public func finish() throws {
        switch mode {
        case .identity, .deflateUndecided: return
        case .zlib:
            if stream != nil && !ended {
                throw ContentDecoding.Failure(message: "zlib could not decode the body: the compressed stream ends early")
            }
        }
    }
}
