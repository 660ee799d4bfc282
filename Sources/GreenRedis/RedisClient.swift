import Foundation
import Glibc
import Green

/// A failed Redis command: which command, and why (the server's error
/// reply, or what went wrong with the connection).
public struct RedisError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The server answered with an error ("ERR ...", "WRONGTYPE ...").
        case reply(String)
        /// Connecting, writing or reading failed (the server went away).
        case connection(String)
        case timedOut(seconds: Double)
        /// The server's bytes were not RESP.
        case protocolViolation(String)
    }

    /// The command's name ("SET"; arguments are left out: they may be
    /// secrets or large).
    public let command: String
    public let kind: Kind

    public init(command: String, kind: Kind) {
        self.command = command
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .reply(let r): return "Redis \(command) failed: the server replied \"\(r)\""
        case .connection(let why): return "Redis \(command) failed: \(why)"
        case .timedOut(let s): return "Redis \(command) failed: no reply within \(s) s"
        case .protocolViolation(let why): return "Redis \(command) failed: the reply is not RESP (\(why))"
        }
    }
}

/// Where a Redis server is: `redis://[[user]:password@]host[:port][/db]`.
public struct RedisURL: Sendable, Equatable {
    public var host: String
    public var port: UInt16 = 6379
    public var username: String?
    public var password: String?
    public var database = 0

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(host: String, port: UInt16 = 6379, database: Int = 0) {
        self.host = host
        self.port = port
        self.database = database
    }

    public init(_ text: String) throws {
        guard let c = URLComponents(string: text), c.scheme?.lowercased() == "redis" else {
            throw Invalid(description: "not a redis:// URL: \(text)")
        }
        guard let host = c.host, !host.isEmpty else { throw Invalid(description: "no host in \(text)") }
        self.host = host
        if let p = c.port {
            guard let p16 = UInt16(exactly: p), p16 > 0 else { throw Invalid(description: "bad port in \(text)") }
            port = p16
        }
        if let u = c.user, !u.isEmpty { username = u.removingPercentEncoding ?? u }
        if let p = c.password { password = p.removingPercentEncoding ?? p }
        let path = c.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let db = Int(path), db >= 0 else { throw Invalid(description: "bad database number in \(text)") }
            database = db
        }
    }
}

/// One connection to a Redis server. Commands may be pipelined: all sent,
/// then all replies read. Confined to its hub's thread, one user at a time
/// (`RedisClient` hands them out). After an error a reply may be missing or
/// half read: the client closes the connection.
final class RedisConnection {
    let socket: Socket
    /// Replies are read through one buffer, pipelined ones taken from it
    /// in turn; commands are gathered and sent in one write.
    private let replies: RESPReader
    private let writer: BufferedWriter

    init(url: RedisURL, timeout: Double) throws {
        do {
            socket = try Socket.connect(host: url.host, port: url.port, timeout: timeout)
        } catch {
            throw RedisError(command: "connect", kind: .connection("cannot connect to \(url.host):\(url.port): \(error)"))
        }
        try? socket.setNoDelay()
        replies = RESPReader(BufferedReader(socket))
        writer = BufferedWriter(socket)
        do {
            if let password = url.password {
                let auth = url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
                try expectOK(try run([auth.map { Array($0.utf8) }], timeout: timeout)[0], "AUTH")
            }
            if url.database != 0 {
                try expectOK(try run([[Array("SELECT".utf8), Array(String(url.database).utf8)]], timeout: timeout)[0],
                             "SELECT")
            }
        } catch {
            socket.close()
            throw error
        }
    }

    private func expectOK(_ v: RedisValue, _ command: String) throws {
        if case .error(let e) = v { throw RedisError(command: command, kind: .reply(e)) }
    }

    /// Sends every command, then reads as many replies (error replies are
    /// values here, in their place).
    func run(_ commands: [[[UInt8]]], timeout: Double) throws -> [RedisValue] {
        let name = commands.first.flatMap { $0.first }.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? "?"
        let label = commands.count == 1 ? name : "pipeline of \(commands.count) (first \(name))"
        do {
            for c in commands { try RESPReader.encode(c, to: writer, timeout: timeout) }
            try writer.flush(timeout: timeout)
            var values: [RedisValue] = []
            values.reserveCapacity(commands.count)
            while values.count < commands.count {
                guard let v = try replies.next(timeout: timeout) else {
                    throw RedisError(command: label, kind: .connection("the server closed the connection"))
                }
                values.append(v)
            }
            return values
        } catch let e as SocketError {
            if case .timedOut(let s) = e.reason { throw RedisError(command: label, kind: .timedOut(seconds: s)) }
            throw RedisError(command: label, kind: .connection("\(e)"))
        } catch let e as RESPProtocolError {
            throw RedisError(command: label, kind: .protocolViolation(e.description))
        } catch BufferedReadError.lineTooLong(let limit) {
            throw RedisError(command: label, kind: .protocolViolation("a line longer than \(limit - 2) bytes"))
        } catch BufferedReadError.unexpectedEnd {
            throw RedisError(command: label, kind: .connection("the server closed the connection in the middle of a reply"))
        }
    }

    /// Whether the server sent nothing unasked: no byte buffered.
    var hasNothingBuffered: Bool { replies.reader.bufferedCount == 0 }

    func close() { socket.close() }
}

/// A Redis client on green sockets: a pool of connections per client,
/// commands that look blocking and park only the calling greenlet,
/// pipelining, timeouts, and reconnection with backoff.
///
/// ```swift
/// let redis = try RedisClient(url: "redis://127.0.0.1:6379/0")
/// try redis.send("SET", "greeting", "hello")
/// let v = try redis.send("GET", "greeting").string      // "hello"
/// let replies = try redis.pipeline([["INCR", "n"], ["INCR", "n"]])
/// ```
///
/// An error reply is a `RedisError` naming the command and the server's
/// words (in a pipeline, error replies are returned in their place). When
/// the server cannot be reached, a command tries again with a growing
/// pause (`reconnectAttempts` times, from 50 ms, doubling) before it
/// fails. A command whose connection broke after it was sent is not sent
/// again (it may have run); the next one reconnects. Confined to one hub's
/// thread.
public final class RedisClient {
    public let url: RedisURL
    public let timeout: Double
    public let reconnectAttempts: Int
    private let slots: Green.Semaphore
    private var idle: [RedisConnection] = []
    /// Connections made so far (a reconnect makes one more).
    public private(set) var connectionsMade = 0
    /// Connections dropped because they broke (the server closed them,
    /// went away, or a reply was lost to a timeout).
    public private(set) var connectionsLost = 0
    /// SHA1 of each script the server has loaded, by source.
    private var scriptHashes: [String: String] = [:]

    public convenience init(url: String, poolSize: Int = 4, timeout: Double = 5, reconnectAttempts: Int = 6) throws {
        self.init(url: try RedisURL(url), poolSize: poolSize, timeout: timeout, reconnectAttempts: reconnectAttempts)
    }

    public init(url: RedisURL, poolSize: Int = 4, timeout: Double = 5, reconnectAttempts: Int = 6) {
        self.url = url
        self.timeout = timeout
        self.reconnectAttempts = max(0, reconnectAttempts)
        slots = Green.Semaphore(value: max(1, poolSize))
    }

    deinit { close() }

    /// Closes the idle connections.
    public func close() {
        for c in idle { c.close() }
        idle.removeAll()
    }

    /// Runs one command; throws its error reply as a `RedisError`.
    @discardableResult
    public func send(_ command: String, _ arguments: String...) throws -> RedisValue {
        try send([command] + arguments)
    }

    @discardableResult
    public func send(_ arguments: [String]) throws -> RedisValue {
        let reply = try run([arguments.map { Array($0.utf8) }])[0]
        if case .error(let e) = reply { throw RedisError(command: arguments.first?.uppercased() ?? "?", kind: .reply(e)) }
        return reply
    }

    /// Runs one command with binary arguments.
    @discardableResult
    public func send(bytes arguments: [[UInt8]]) throws -> RedisValue {
        let reply = try run([arguments])[0]
        if case .error(let e) = reply {
            throw RedisError(command: arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? "?",
                             kind: .reply(e))
        }
        return reply
    }

    /// Runs a Lua script on the server (EVALSHA, loading it once per
    /// client; a server that lost its script cache to a restart gets the
    /// source again). Throws the script's error reply as a `RedisError`.
    @discardableResult
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String] = []) throws -> RedisValue {
        let tail = [String(keys.count)] + keys + arguments
        if let sha = scriptHashes[script.source] {
            let reply = try run([(["EVALSHA", sha] + tail).map { Array($0.utf8) }])[0]
            if case .error(let e) = reply {
                guard e.hasPrefix("NOSCRIPT") else { throw RedisError(command: "EVALSHA \(script.name)", kind: .reply(e)) }
                scriptHashes[script.source] = nil
            } else {
                return reply
            }
        }
        // SCRIPT LOAD and EVAL in one pipeline: one round trip, and the
        // hash for every later call comes back with the result.
        let replies = try run([["SCRIPT", "LOAD", script.source].map { Array($0.utf8) },
                               (["EVAL", script.source] + tail).map { Array($0.utf8) }])
        if case .error(let e) = replies[0] { throw RedisError(command: "SCRIPT LOAD \(script.name)", kind: .reply(e)) }
        if let sha = replies[0].string { scriptHashes[script.source] = sha }
        if case .error(let e) = replies[1] { throw RedisError(command: "EVAL \(script.name)", kind: .reply(e)) }
        return replies[1]
    }

    /// Sends the commands in one write and reads their replies in order;
    /// error replies are returned in their place.
    public func pipeline(_ commands: [[String]]) throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        return try run(commands.map { $0.map { Array($0.utf8) } })
    }

    private func run(_ commands: [[[UInt8]]]) throws -> [RedisValue] {
        try slots.acquire()
        defer { slots.release() }
        let c = try connection(for: commands)
        do {
            let replies = try c.run(commands, timeout: timeout)
            idle.append(c)
            return replies
        } catch {
            c.close()
            connectionsLost += 1
            throw error
        }
    }

    /// An idle connection, or a new one, trying again with backoff while
    /// the server cannot be reached.
    private func connection(for commands: [[[UInt8]]]) throws -> RedisConnection {
        while let c = idle.popLast() {
            // One the server closed meanwhile (a restart) reads as the end of
            // the stream: look without waiting.
            var byte: UInt8 = 0
            let n = Glibc.recv(c.socket.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && c.hasNothingBuffered { return c }
            c.close()
            connectionsLost += 1
        }
        var pause = 0.05
        var attempt = 0
        while true {
            do {
                let c = try RedisConnection(url: url, timeout: timeout)
                connectionsMade += 1
                return c
            } catch let e as RedisError {
                guard case .connection = e.kind, attempt < reconnectAttempts else {
                    let name = commands.first.flatMap { $0.first }.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? "?"
                    if case .reply = e.kind { throw e }   // AUTH or SELECT refused
                    throw RedisError(command: name, kind: e.kind)
                }
                attempt += 1
                try Green.sleep(pause)
                pause = min(pause * 2, 2)
            }
        }
    }
}

/// A Lua script for `RedisClient.evaluate`: runs atomically on the server
/// (no other command runs in between), which is how several clients share
/// a data structure without races.
public struct RedisScript: Sendable {
    /// What errors call it ("EVAL claim").
    public let name: String
    public let source: String

    public init(name: String, _ source: String) {
        self.name = name
        self.source = source
    }
}
