/// The wire form of one WebSocket frame's header (RFC 6455 section 5.2):
///
///     FIN RSV1-3 opcode(4) | MASK length(7) | [16- or 64-bit length] | [masking key(4)]
///
/// and the masking that a client applies to every payload it sends.
struct WebSocketFrame {
    enum Opcode: UInt8 {
        case continuation = 0x0
        case text = 0x1
        case binary = 0x2
        case close = 0x8
        case ping = 0x9
        case pong = 0xA

        var isControl: Bool { rawValue & 0x8 != 0 }
    }

    /// The longest header: 2 bytes, a 64-bit length and a masking key.
    static let maxHeaderSize = 14
    /// Control frames carry at most this much payload (section 5.5).
    static let maxControlPayload = 125

    var fin: Bool
    /// RSV1-3, as the top bits of the first byte (0x70 mask).
    var reserved: UInt8
    /// The opcode as sent; `Opcode(rawValue:)` is nil for reserved ones.
    var opcodeBits: UInt8
    /// The masking key as it lies in memory (little-endian load of its
    /// four bytes), nil for an unmasked frame.
    var maskKey: UInt32?
    var length: UInt64

    /// The header's total size, known from its first two bytes.
    static func headerSize(first: UInt8, second: UInt8) -> Int {
        let length7 = second & 0x7F
        return 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + (second & 0x80 != 0 ? 4 : 0)
    }

    /// Reads a header of `headerSize(...)` bytes at `p`.
    init(parsing p: UnsafeRawPointer) {
        let b0 = p.load(as: UInt8.self)
        let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
        fin = b0 & 0x80 != 0
        reserved = b0 & 0x70
        opcodeBits = b0 & 0x0F
        var at = 2
        switch b1 & 0x7F {
        case 126:
            length = UInt64(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            at = 4
        case 127:
            length = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            at = 10
        case let short:
            length = UInt64(short)
        }
        maskKey = b1 & 0x80 != 0 ? p.loadUnaligned(fromByteOffset: at, as: UInt32.self) : nil
    }

    init(fin: Bool, opcode: Opcode, length: Int, maskKey: UInt32?) {
        self.fin = fin
        reserved = 0
        opcodeBits = opcode.rawValue
        self.maskKey = maskKey
        self.length = UInt64(length)
    }

    /// Writes the header at `p` (room for `maxHeaderSize` bytes) with the
    /// shortest length form, as section 5.2 requires; returns its size.
    func encode(into p: UnsafeMutableRawPointer) -> Int {
        p.storeBytes(of: (fin ? 0x80 : 0) | reserved | opcodeBits, as: UInt8.self)
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        var at: Int
        if length <= 125 {
            p.storeBytes(of: maskBit | UInt8(length), toByteOffset: 1, as: UInt8.self)
            at = 2
        } else if length <= 0xFFFF {
            p.storeBytes(of: maskBit | 126, toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
            at = 4
        } else {
            p.storeBytes(of: maskBit | 127, toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: length.bigEndian, toByteOffset: 2, as: UInt64.self)
            at = 10
        }
        if let maskKey {
            p.storeBytes(of: maskKey, toByteOffset: at, as: UInt32.self)
            at += 4
        }
        return at
    }

    /// XORs `count` bytes from `source` with `key` (as it lies in memory)
    /// into `target`, which may be `source`: masking and unmasking are the
    /// same operation (section 5.3). Eight bytes at a time.
    static func mask(_ source: UnsafeRawPointer, into target: UnsafeMutableRawPointer, count: Int, key: UInt32) {
        let wide = UInt64(key) | UInt64(key) << 32
        var i = 0
        while i + 8 <= count {
            target.storeBytes(of: source.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ wide,
                              toByteOffset: i, as: UInt64.self)
            i += 8
        }
        // Byte i takes key byte i % 4, as the key lies in memory.
        withUnsafeBytes(of: key) { k in
            while i < count {
                target.storeBytes(of: source.load(fromByteOffset: i, as: UInt8.self) ^ k[i & 3],
                                  toByteOffset: i, as: UInt8.self)
                i += 1
            }
        }
    }
}
