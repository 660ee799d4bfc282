import Glibc

/// Connecting to a host with several addresses as RFC 8305 ("Happy
/// Eyeballs v2") says: the addresses are tried in an order that alternates
/// the families (IPv6, IPv4, IPv6, ... when the system prefers IPv6), a
/// new attempt starts every `attemptDelay` seconds while the earlier ones
/// are still pending, or at once when one fails, and the first connection
/// made wins; the others are closed. A host whose IPv6 path is broken (a
/// route that drops packets, a firewall that never answers) then costs
/// `attemptDelay`, not the whole connect timeout.
///
/// Names are resolved first, with `getaddrinfo` for both families at once
/// (`Resolver`), so the RFC's resolution delay has nothing to wait for.
extension Socket {
    /// RFC 8305's recommended Connection Attempt Delay.
    public static let defaultAttemptDelay = 0.25

    /// Connects to the first of `addresses` that answers, as RFC 8305
    /// says (see above): attempts overlap, a new one every `attemptDelay`
    /// seconds (clamped to RFC 8305's 10 ms to 2 s) or at once when one
    /// fails. The whole attempt takes at most `timeout` seconds (nil: no
    /// limit), then throws `.timedOut`. When every address fails, throws
    /// the error of the last one to fail (naming its address). Sockets of
    /// attempts that lose, fail or are cut short by a kill or an enclosing
    /// timeout are closed before this returns or throws.
    public static func connect(addresses: [SocketAddress], type: SocketType = .stream,
                               attemptDelay: Double = defaultAttemptDelay, timeout: Double? = nil) throws -> Socket {
        guard let first = addresses.first else {
            throw SocketError(operation: "connect", reason: .system(errno: EADDRNOTAVAIL))
        }
        if addresses.count == 1 || type != .stream {
            // One address, or datagrams (their connect does not wait).
            if addresses.count == 1 {
                let s = try Socket(family: first.family, type: type)
                do { try s.connect(to: first, timeout: timeout) } catch { s.close(); throw error }
                return s
            }
            var lastError: (any Error)?
            for address in addresses {
                let s = try Socket(family: address.family, type: type)
                do { try s.connect(to: address, timeout: timeout); return s } catch { s.close(); lastError = error }
            }
            throw lastError!
        }
        let order = interleavedByFamily(addresses)
        let delay = min(max(attemptDelay, 0.01), 2.0)
        let hub = Hub.current
        let deadline = timeout.map { hub.nowUpdated() + $0 }
        var pending: [(socket: Socket, address: SocketAddress)] = []
        var next = 0
        var lastStart = 0.0
        var lastError: (any Error)?
        defer { for p in pending { p.socket.close() } }

        /// Starts the next attempt; returns a socket if it connected at once.
        func start() throws -> Socket? {
            let address = order[next]
            next += 1
            lastStart = hub.nowUpdated()
            let s = try Socket(family: address.family, type: type)
            let rc = address.withSockAddr { Glibc.connect(s.fd, $0, $1) }
            if rc == 0 { return s }
            let err = errno
            if err == EINPROGRESS || err == EINTR {
                pending.append((s, address))
            } else {
                s.close()
                lastError = SocketError.system("connect", err, address: address)
            }
            return nil
        }

        while true {
            // Nothing in flight: start attempts until one is (or none is left).
            while pending.isEmpty {
                guard next < order.count else { throw lastError! }
                if let s = try start() { return s }
            }
            let now = hub.nowUpdated()
            var wait = deadline.map { $0 - now }
            if next < order.count { wait = min(wait ?? .infinity, max(0, lastStart + delay - now)) }
            if let d = deadline, now >= d {
                throw SocketError(operation: "connect to \(order[0])", reason: .timedOut(seconds: timeout!))
            }
            let (_, ready) = try select(writable: pending.map { $0.socket.fd }, timeout: wait)
            var failed = false
            for fd in ready {
                guard let i = pending.firstIndex(where: { $0.socket.fd == fd }) else { continue }
                let attempt = pending[i]
                var soError: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                if soError == 0 {
                    pending.remove(at: i)
                    return attempt.socket
                }
                pending.remove(at: i)
                attempt.socket.close()
                lastError = SocketError.system("connect", soError, address: attempt.address)
                failed = true
            }
            // A failure starts the next attempt at once; so does the delay's end.
            if next < order.count && (failed || hub.nowUpdated() >= lastStart + delay) {
                if let s = try start() { return s }
            }
        }
    }

    /// `addresses` reordered as RFC 8305 section 4 says: the first
    /// address's family first, then alternating with the other family,
    /// each family keeping its own order (the system's preference).
    public static func interleavedByFamily(_ addresses: [SocketAddress]) -> [SocketAddress] {
        guard let first = addresses.first else { return [] }
        let preferred = addresses.filter { $0.family == first.family }
        let others = addresses.filter { $0.family != first.family }
        var out: [SocketAddress] = []
        out.reserveCapacity(addresses.count)
        for i in 0..<max(preferred.count, others.count) {
            if i < preferred.count { out.append(preferred[i]) }
            if i < others.count { out.append(others[i]) }
        }
        return out
    }
}
