import Glibc

/// A page's bytes from its charset to UTF-8 as they arrive, through iconv,
/// never stopping: a byte the charset does not define becomes U+FFFD and
/// the rest goes on (libxml2 left to convert by itself stops the page at
/// the first such byte), and a sequence cut by the end of a piece waits
/// for the next one.
final class CharsetDecoder {
    private let converter: iconv_t
    /// An incomplete sequence left at the end of the last piece.
    private var carry: [UInt8] = []
    private static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// Nil when iconv does not know `charset`.
    init?(charset: String) {
        // iconv_open answers (iconv_t)-1 for a charset it does not know.
        guard let c = iconv_open("UTF-8", charset), Int(bitPattern: c) != -1 else { return nil }
        converter = c
    }

    deinit { iconv_close(converter) }

    /// `bytes` in UTF-8; `final`: nothing follows (a cut sequence at the
    /// end becomes U+FFFD).
    func convert(_ bytes: UnsafeRawBufferPointer, final: Bool = false) -> [UInt8] {
        var input = carry
        carry = []
        input.append(contentsOf: bytes)
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 2 + 16)
        var chunk = [UInt8](repeating: 0, count: max(4096, input.count * 3 + 16))
        input.withUnsafeMutableBufferPointer { inBuf in
            var inPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(inBuf.baseAddress)?.assumingMemoryBound(to: CChar.self)
            var inLeft = inBuf.count
            while inLeft > 0 {
                let (rc, err, produced) = chunk.withUnsafeMutableBytes { outBuf -> (Int, Int32, Int) in
                    var outPtr: UnsafeMutablePointer<CChar>? = outBuf.baseAddress?.assumingMemoryBound(to: CChar.self)
                    var outLeft = outBuf.count
                    let rc = iconv(converter, &inPtr, &inLeft, &outPtr, &outLeft)
                    return (rc, rc == -1 ? errno : 0, outBuf.count - outLeft)
                }
                output.append(contentsOf: chunk[..<produced])
                if rc != -1 || err == E2BIG { continue }
                if err == EINVAL && !final {
                    // Cut by the end of this piece: wait for the rest.
                    carry = Array(UnsafeRawBufferPointer(start: inPtr, count: inLeft))
                    return
                }
                // EILSEQ (not in the charset), or a cut sequence at the end.
                output.append(contentsOf: CharsetDecoder.replacement)
                inPtr = inPtr.map { $0 + 1 }
                inLeft -= 1
            }
        }
        return output
    }

    /// What a page's declared charset (header, prescan or byte-order
    /// mark) means to a browser, as the WHATWG Encoding Standard maps its
    /// labels: nil for UTF-8 (read as it is), else the charset to convert
    /// from. ASCII and Latin-1 labels mean windows-1252; UTF-16 named by a
    /// `<meta>` means UTF-8 (a real UTF-16 page starts with its BOM).
    static func effectiveCharset(_ label: String?, fromMeta: Bool) -> String? {
        guard let label else { return nil }
        let l = label.lowercased()
        switch l {
        case "utf-8", "utf8", "unicode-1-1-utf-8", "x-unicode20utf8":
            return nil
        case "us-ascii", "ascii", "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "cp819", "ibm819",
             "windows-1252", "x-cp1252", "cp1252", "iso-ir-100", "csisolatin1", "ansi_x3.4-1968":
            return "WINDOWS-1252"
        case "utf-16", "utf-16le", "utf-16be", "unicode", "ucs-2":
            return fromMeta ? nil : l
        default:
            return l
        }
    }

    /// The charset a byte-order mark at the start of `bytes` says, if any.
    static func byteOrderMark(_ bytes: UnsafeRawBufferPointer) -> String? {
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { return "UTF-8" }
        if bytes.count >= 2 && bytes[0] == 0xFF && bytes[1] == 0xFE { return "UTF-16LE" }
        if bytes.count >= 2 && bytes[0] == 0xFE && bytes[1] == 0xFF { return "UTF-16BE" }
        return nil
    }
}
