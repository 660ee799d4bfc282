import GreenTLS

/// The digests a WARC record carries: `sha1:` and the SHA-1 in base32
/// (RFC 4648), the form wget, Heritrix and warcio write and check.
enum WARCDigest {
    /// `sha1:<base32>` of `bytes`.
    static func sha1(_ bytes: ArraySlice<UInt8>) -> String {
        "sha1:" + base32(bytes.withUnsafeBytes { Digest.sha1($0) }[...])
    }

    /// RFC 4648 base32, upper case, padded.
    static func base32(_ bytes: ArraySlice<UInt8>) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 4) / 5 * 8)
        var buffer: UInt64 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt64(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt64(bits)) & 31)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt64(5 - bits)) & 31)]) }
        while out.count % 8 != 0 { out.append(UInt8(ascii: "=")) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Where the payload of an HTTP message (`application/http` block)
    /// begins: after the status or request line and the header lines, at
    /// the first line that is blank once trailing whitespace is removed.
    ///
    /// This is exactly where warcio (1.8, `StatusAndHeadersParser.parse`,
    /// which `warcio check` and every reader built on it use) starts its
    /// payload digest: lines end at LF, a line of only CR/LF/whitespace
    /// ends the headers, and a message with no such line has an empty
    /// payload. An HTTP/1.1 server always sends CRLF CRLF, where all
    /// readers agree; mirroring warcio keeps even a malformed response's
    /// record verifiable.
    static func httpPayloadOffset(_ message: [UInt8]) -> Int {
        var lineStart = 0
        while lineStart < message.count {
            var end = lineStart
            while end < message.count && message[end] != UInt8(ascii: "\n") { end += 1 }
            let next = end < message.count ? end + 1 : end
            let blank = message[lineStart..<next].allSatisfy(isPythonASCIISpace)
            // A blank first line is the whole (empty) head, as in warcio.
            if blank { return next }
            lineStart = next
        }
        return message.count
    }

    /// Python's `str.isspace()` on ASCII, which `rstrip()` uses.
    private static func isPythonASCIISpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte) || (0x1C...0x1F).contains(byte)
    }
}
