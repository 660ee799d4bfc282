/// Checks UTF-8 as it arrives, a fragment at a time (RFC 3629: no
/// overlong forms, no surrogates, nothing above U+10FFFF), so a text
/// message can be refused at its first bad byte even when one character
/// is split across two frames.
struct WebSocketUTF8Validator {
    /// Continuation bytes the current character still needs.
    private var remaining = 0
    /// The range the next continuation byte must fall in (narrower than
    /// 0x80...0xBF right after E0, ED, F0 and F4).
    private var low: UInt8 = 0x80
    private var high: UInt8 = 0xBF

    /// Whether the bytes seen so far end at a character boundary: a
    /// message that ends elsewhere is cut in the middle of a character.
    var isAtBoundary: Bool { remaining == 0 }

    /// Checks the next `bytes`; false at the first byte that cannot
    /// continue valid UTF-8 (the validator is then to be reset).
    mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        var i = 0
        while i < n {
            let b = bytes[i]
            if remaining > 0 {
                guard b >= low && b <= high else { return false }
                low = 0x80
                high = 0xBF
                remaining -= 1
                i += 1
                continue
            }
            if b < 0x80 {
                i += 1
                // ASCII runs, eight bytes at a time.
                while i + 8 <= n && bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                    i += 8
                }
                continue
            }
            switch b {
            case 0xC2...0xDF: remaining = 1
            case 0xE0: remaining = 2; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: remaining = 2
            case 0xED: remaining = 2; high = 0x9F        // no surrogates
            case 0xF0: remaining = 3; low = 0x90         // no overlong 4-byte forms
            case 0xF1...0xF3: remaining = 3
            case 0xF4: remaining = 3; high = 0x8F        // nothing above U+10FFFF
            default: return false                        // 80-C1 (stray or overlong), F5-FF
            }
            i += 1
        }
        return true
    }

    /// Whether `bytes` alone are complete, valid UTF-8.
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var v = WebSocketUTF8Validator()
        return v.validate(bytes) && v.isAtBoundary
    }
}
