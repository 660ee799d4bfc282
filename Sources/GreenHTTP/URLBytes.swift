/// Bytes of URL text. Pure computations: any thread, never blocking.
public enum URLBytes {
    /// Whether `bytes` are all characters a URL's path, query and fragment
    /// hold as they are (RFC 3986's unreserved and reserved ones but "["
    /// and "]", which belong to IPv6 hosts), each "%" followed by two hex
    /// digits: text that `URL` takes without re-encoding anything.
    public static func areVerbatim(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"),
                 UInt8(ascii: "@"), UInt8(ascii: "!"), UInt8(ascii: "$"),
                 UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"),
                 UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
                break
            case UInt8(ascii: "%"):
                guard i + 2 < bytes.count, isHexDigit(bytes[i + 1]), isHexDigit(bytes[i + 2]) else { return false }
            default:
                return false
            }
            i += 1
        }
        return true
    }

    /// Whether `bytes` start with "https://" or "http://" (lowercase, as
    /// a normalized URL has them): which one, and where the authority
    /// begins; nil for anything else.
    package static func httpScheme(of bytes: UnsafeBufferPointer<UInt8>) -> (secure: Bool, authority: Int)? {
        if bytes.count >= 8 && bytes[..<8].elementsEqual("https://".utf8) { return (true, 8) }
        if bytes.count >= 7 && bytes[..<7].elementsEqual("http://".utf8) { return (false, 7) }
        return nil
    }

    static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x66)
    }
}
