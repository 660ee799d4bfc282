import Glibc

/// Name resolution that never blocks the hub: `getaddrinfo` runs on
/// `ThreadPool.shared` while the calling greenlet waits. Numeric addresses
/// are answered at once, without a thread.
public enum Resolver {
    /// The addresses of `host` for `port`, in the order the system prefers
    /// (RFC 6724: usually IPv6 first where it is reachable). `family`
    /// limits them (`AF_INET`, `AF_INET6`; `AF_UNSPEC` for both). Lookups
    /// run on `pool`, blocking only the calling greenlet. Throws
    /// `Resolver.Failure` naming the host if there are none, or the
    /// interrupt when the greenlet is killed or an enclosing timeout
    /// expires. Any thread: a plain thread gets a hub and waits in its
    /// main greenlet.
    public static func resolve(host: String, port: UInt16, type: SocketType = .stream,
                               family: Int32 = AF_UNSPEC, pool: ThreadPool = .shared) throws -> [SocketAddress] {
        if let numeric = try? SocketAddress(ip: host, port: port),
           family == AF_UNSPEC || numeric.family == family {
            return [numeric]
        }
        return try pool.run { try lookup(host: host, port: port, type: type, family: family) }
    }

    /// The blocking lookup, on a pool thread.
    static func lookup(host: String, port: UInt16, type: SocketType, family: Int32) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = type.rawValue
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0 else {
            let message = rc == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(rc))
            throw Failure(host: host, code: rc, message: message)
        }
        defer { freeaddrinfo(list) }
        var out: [SocketAddress] = []
        var seen = Set<SocketAddress>()
        var cursor = list
        while let ai = cursor {
            if let sa = ai.pointee.ai_addr {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { raw in
                    raw.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: Int(ai.pointee.ai_addrlen)))
                }
                let address = SocketAddress(storage: storage, length: ai.pointee.ai_addrlen)
                if seen.insert(address).inserted { out.append(address) }
            }
            cursor = ai.pointee.ai_next
        }
        if out.isEmpty { throw Failure(host: host, code: EAI_NONAME, message: "no address") }
        return out
    }

    /// A name that could not be resolved.
    public struct Failure: Error, CustomStringConvertible {
        /// The name that was looked up.
        public let host: String
        /// The `getaddrinfo` code (`EAI_NONAME`, `EAI_AGAIN`, ...).
        public let code: Int32
        /// The system's explanation of `code` (`gai_strerror`).
        public let message: String
        /// "cannot resolve "<host>": <message>".
        public var description: String { "cannot resolve \"\(host)\": \(message)" }
    }
}
