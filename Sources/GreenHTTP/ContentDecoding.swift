import CZlib

/// Decodes `Content-Encoding: gzip` and `deflate` bodies through zlib,
/// refusing to expand past a limit (a small compressed body can claim
/// gigabytes). Used by the client, and by anyone holding an encoded body
/// (a gzipped sitemap file, say).
public enum ContentDecoding {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// The decoded body. `encoding` is the header's value ("gzip",
    /// "x-gzip", "deflate", "identity"); others throw.
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
