import Glibc

/// An IPv4, IPv6 or Unix-domain socket address, held as the `sockaddr`
/// the kernel takes. A value: any thread; nothing in it blocks.
///
/// ```swift
/// let a = try SocketAddress(ip: "127.0.0.1", port: 8080)
/// let b = try SocketAddress(ip: "::1", port: 8080)
/// let c = try SocketAddress(unixPath: "/tmp/app.sock")
/// ```
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    private var storage: sockaddr_storage
    /// The length of the address in `storage`.
    public private(set) var length: socklen_t

    /// An address from a numeric IPv4 or IPv6 literal (no name lookup; see
    /// `Resolver` for names). Throws `SocketAddress.Invalid` otherwise.
    public init(ip: String, port: UInt16) throws {
        if ip.contains(":") {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, ip, &a.sin6_addr) == 1 else { throw Invalid(text: ip) }
            self.init(a)
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            guard inet_pton(AF_INET, ip, &a.sin_addr) == 1 else { throw Invalid(text: ip) }
            self.init(a)
        }
    }

    /// A Unix-domain address. Throws `Invalid` if the path does not fit.
    public init(unixPath path: String) throws {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: a.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { throw Invalid(text: path) }
        withUnsafeMutableBytes(of: &a.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        self.init(a, length: MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + bytes.count + 1)
    }

    /// An address as the kernel returned it.
    init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    /// `address` (a `sockaddr_in`, `sockaddr_in6` or `sockaddr_un`) in a
    /// `sockaddr_storage`; `length` bytes of it count (all by default).
    private init<Address>(_ address: Address, length: Int = MemoryLayout<Address>.size) {
        var s = sockaddr_storage()
        withUnsafeMutableBytes(of: &s) { $0.storeBytes(of: address, as: Address.self) }
        self.init(storage: s, length: socklen_t(length))
    }

    /// `AF_INET`, `AF_INET6` or `AF_UNIX`.
    public var family: Int32 { Int32(storage.ss_family) }

    /// The port of an IP address (0 for a Unix one).
    public var port: UInt16 {
        switch family {
        case AF_INET: return UInt16(bigEndian: withIPv4 { $0.sin_port })
        case AF_INET6: return UInt16(bigEndian: withIPv6 { $0.sin6_port })
        default: return 0
        }
    }

    /// The numeric host ("127.0.0.1", "::1"), or the path of a Unix address.
    public var host: String {
        switch family {
        case AF_INET:
            var a = withIPv4 { $0.sin_addr }
            return numeric(AF_INET, &a, Int(INET_ADDRSTRLEN))
        case AF_INET6:
            var a = withIPv6 { $0.sin6_addr }
            return numeric(AF_INET6, &a, Int(INET6_ADDRSTRLEN))
        case AF_UNIX:
            return withUnsafeBytes(of: storage) { raw in
                let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
                let end = Int(length)
                guard end > offset else { return "" }
                let bytes = raw[offset..<end].prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
        default:
            return "?"
        }
    }

    /// "127.0.0.1:80", "[::1]:80" or "unix:/path".
    public var description: String {
        switch family {
        case AF_INET: return "\(host):\(port)"
        case AF_INET6: return "[\(host)]:\(port)"
        case AF_UNIX: return "unix:\(host)"
        default: return "address family \(family)"
        }
    }

    /// Whether the address is this machine's own: 127.0.0.0/8, ::1, an
    /// IPv4-mapped 127.x address, or a Unix socket.
    public var isLoopback: Bool {
        switch family {
        case AF_INET:
            return withIPv4 { UInt32(bigEndian: $0.sin_addr.s_addr) >> 24 == 127 }
        case AF_INET6:
            return withIPv6 { a in
                withUnsafeBytes(of: a.sin6_addr) { b in
                    if b.prefix(15).allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }   // ::1
                    // ::ffff:127.x.y.z
                    return b.prefix(10).allSatisfy { $0 == 0 } && b[10] == 0xff && b[11] == 0xff && b[12] == 127
                }
            }
        case AF_UNIX:
            return true
        default:
            return false
        }
    }

    /// Calls `body` with the address as the kernel takes it.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: storage) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    private func withIPv4<R>(_ body: (sockaddr_in) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.load(as: sockaddr_in.self)) }
    }

    private func withIPv6<R>(_ body: (sockaddr_in6) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.load(as: sockaddr_in6.self)) }
    }

    private func numeric(_ family: Int32, _ addr: UnsafeRawPointer, _ size: Int) -> String {
        var buf = [CChar](repeating: 0, count: size)
        guard inet_ntop(family, addr, &buf, socklen_t(size)) != nil else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether the two hold the same bytes as the kernel takes them
    /// (family, address, port; for IPv6 also flow info and scope).
    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        a.length == b.length && a.withSockAddr { pa, n in
            b.withSockAddr { pb, _ in memcmp(pa, pb, Int(n)) == 0 }
        }
    }

    /// Hashes the bytes `==` compares.
    public func hash(into hasher: inout Hasher) {
        withSockAddr { p, n in hasher.combine(bytes: UnsafeRawBufferPointer(start: p, count: Int(n))) }
    }

    /// Text that is not a numeric address, or a Unix path that does not fit.
    public struct Invalid: Error, CustomStringConvertible {
        /// The text that was refused.
        public let text: String
        /// The text, and what it is not.
        public var description: String { "not a numeric IP address or usable Unix socket path: \"\(text)\"" }
    }
}
