import Glibc
import Green
import GreenTLS

/// Connections to one host: idle ones for reuse, and a cap on how many
/// exist at once.
final class HostPool {
    final class Connection {
        let socket: Socket
        /// TLS on the socket, for https.
        let tls: TLSSocket?
        /// What the server sent and the parser has not taken yet, kept with
        /// the connection across requests.
        lazy var reader = BufferedReader(transport, capacity: 32 * 1024)
        /// When it was last put back idle (the hub's clock).
        var idleSince = 0.0
        init(socket: Socket, tls: TLSSocket?) {
            self.socket = socket
            self.tls = tls
        }
        var transport: any ByteStream { tls ?? socket }
    }

    let host: String
    let port: UInt16
    let options: HTTPClient.Options
    /// For https: the client's context, and the last session to resume.
    let tls: TLSContext?
    private var session: TLSSession?
    private var idle: [Connection] = []
    private let slots: Green.Semaphore
    /// Requests holding or waiting for a connection.
    private(set) var inUse = 0
    /// When a request last began or ended here (the hub's clock).
    private(set) var lastUsed = 0.0

    /// Nothing idle, nothing in flight: the pool can go.
    var isUnused: Bool { inUse == 0 && idle.isEmpty }

    init(host: String, port: UInt16, tls: TLSContext?, options: HTTPClient.Options) {
        self.host = host
        self.port = port
        self.tls = tls
        self.options = options
        slots = Green.Semaphore(value: max(1, options.maxConnectionsPerHost))
    }

    /// A connection (reused if one is idle) and whether it was reused.
    /// Waits while the host's connections are all busy.
    func acquire(url: String) throws -> (Connection, Bool) {
        inUse += 1
        lastUsed = Hub.current.now
        do {
            try slots.acquire()
        } catch {
            inUse -= 1
            throw error
        }
        do {
            return try connection(url: url)
        } catch {
            inUse -= 1
            throw error
        }
    }

    /// A connection once a slot is held (released again on failure).
    private func connection(url: String) throws -> (Connection, Bool) {
        while let c = idle.popLast() {
            // An idle connection the peer has closed reads as end of
            // stream (or has stray bytes): look without blocking or parking.
            if let tls = c.tls {
                if tls.isIdleAndOpen() { return (c, true) }
            } else {
                var byte: UInt8 = 0
                let n = recv(c.socket.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return (c, true) }
            }
            c.socket.close()
        }
        var socket: Socket?
        do {
            let s = try Socket.connect(host: host, port: port, timeout: options.connectTimeout)
            socket = s
            try? s.setNoDelay()
            var secure: TLSSocket?
            if let tls {
                let t = try TLSSocket(client: s, context: tls, serverName: host, resuming: session)
                try t.handshake(timeout: options.connectTimeout)
                secure = t
            }
            return (Connection(socket: s, tls: secure), false)
        } catch let e as SocketError {
            socket?.close()
            slots.release()
            if case .timedOut(let secs) = e.reason {
                let phase = socket == nil ? "connect" : "TLS handshake"
                throw HTTPClientError(url: url, kind: .timedOut(phase: phase, seconds: secs))
            }
            throw HTTPClientError(url: url, kind: .connection(e))
        } catch let e as TLSError {
            socket?.close()
            slots.release()
            throw HTTPClientError(url: url, kind: .tls(e))
        } catch let e as Resolver.Failure {
            slots.release()
            throw HTTPClientError(url: url, kind: .resolution(e))
        } catch {
            socket?.close()
            slots.release()
            throw error
        }
    }

    func release(_ c: Connection, keep: Bool) {
        inUse -= 1
        lastUsed = Hub.current.now
        if let tls = c.tls, let s = tls.session { session = s }
        if keep && !c.socket.isClosed && idle.count < options.maxIdlePerHost {
            c.idleSince = lastUsed
            idle.append(c)
        } else {
            c.socket.close()
        }
        slots.release()
    }

    /// Closes the connections idle since before `cutoff` (the hub's
    /// clock); every idle one by default.
    func closeIdle(before cutoff: Double = .infinity) {
        for c in idle where c.idleSince <= cutoff { c.socket.close() }
        idle.removeAll { $0.socket.isClosed }
    }
}
