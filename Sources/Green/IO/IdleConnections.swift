import Glibc

/// The connections of a hub that are waiting on their peer between
/// requests (or before the first), longest-waiting first: what a server
/// closes so that it can go on accepting when the process has run out of
/// file descriptors.
///
/// A server out of descriptors has three choices: stop accepting (new
/// clients wait in the kernel's backlog, and once it is full their SYNs
/// are dropped and they retry after a second or more), accept and close
/// at once (new clients fail), or free descriptors. When a storm of idle
/// connections (slow or abandoned clients, an attack) holds the table,
/// only the last serves anyone: `StreamServer` closes the longest-idle
/// connections listed here and accepts again, and backs off only when
/// none is idle (every descriptor is doing work).
///
/// A handler lists its connection while it waits for the peer's next
/// request, which is the only time closing it loses nothing:
///
/// ```swift
/// let idle = IdleConnections.Entry(conn)
/// while true {
///     let request = try IdleConnections.current.whileIdle(idle) { try readRequest(conn) }
///     ...
/// }
/// ```
///
/// `HTTPServer` does this for every connection. Closing a listed
/// connection wakes its waiting greenlet with `SocketError` `.closed`.
/// One per hub (`current`), shared by the hub's servers; confined to the
/// hub's thread.
public final class IdleConnections {
    /// A connection's place in the list, made once per connection and
    /// reused for each wait.
    public final class Entry {
        /// The connection closed when it is idle longest.
        public let socket: Socket
        fileprivate unowned(unsafe) var previous: Entry?
        fileprivate var next: Entry?
        fileprivate var listed = false

        /// An entry for `socket`, not listed until `whileIdle` runs.
        public init(_ socket: Socket) { self.socket = socket }
    }

    // A doubly linked list in the order the waits began: the head has
    // waited longest. `next` links are strong, so the list holds every
    // listed entry (from the head on); `previous` links and `tail` are
    // `unowned(unsafe)`, sound because they only ever name a listed entry
    // (`remove` clears them), which the strong links keep alive.
    private var head: Entry?
    private unowned(unsafe) var tail: Entry?

    /// Connections listed now.
    public private(set) var count = 0
    /// Connections closed by `closeLongestIdle` so far.
    public private(set) var closedTotal = 0

    /// An empty list apart from the hub's; servers use `current`, the
    /// hub's own.
    public init() {}

    /// The calling thread's hub's list.
    public static var current: IdleConnections { Hub.current.idleConnections }

    /// Runs `wait` (a wait for the peer) with `entry`'s connection listed
    /// as idle, so that it may be closed under descriptor pressure; then
    /// its waiting greenlet sees `.closed`. Blocks as `wait` does and
    /// rethrows what it throws.
    public func whileIdle<R>(_ entry: Entry, _ wait: () throws -> R) rethrows -> R {
        append(entry)
        defer { remove(entry) }
        return try wait()
    }

    /// Closes up to `n` of the connections that have waited longest;
    /// returns how many it closed. Never blocks.
    @discardableResult
    public func closeLongestIdle(_ n: Int) -> Int {
        var closed = 0
        while closed < n, let first = head {
            remove(first)
            first.socket.close()
            closed += 1
        }
        closedTotal += closed
        return closed
    }

    private func append(_ e: Entry) {
        precondition(!e.listed, "IdleConnections: a connection listed twice")
        e.listed = true
        e.previous = tail
        e.next = nil
        if let t = tail { t.next = e } else { head = e }
        tail = e
        count += 1
    }

    private func remove(_ e: Entry) {
        guard e.listed else { return }
        e.listed = false
        if let n = e.next { n.previous = e.previous } else { tail = e.previous }
        if let p = e.previous { p.next = e.next } else { head = e.next }
        e.previous = nil
        e.next = nil
        count -= 1
    }
}
