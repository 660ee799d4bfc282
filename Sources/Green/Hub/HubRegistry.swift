import Glibc

/// Every hub of the process, reachable from any thread (for dumps and
/// metrics).
enum HubRegistry {
    struct Entry: Sendable {
        let mailbox: HubMailbox
        let thread: UInt
    }

    private static let hubs = Locked<(next: Int, entries: [Int: Entry])>((1, [:]))

    static func register(_ mailbox: HubMailbox, thread: pthread_t) -> Int {
        hubs.withLock { s in
            let id = s.next
            s.next += 1
            s.entries[id] = Entry(mailbox: mailbox, thread: UInt(thread))
            return id
        }
    }

    static func unregister(_ id: Int) {
        _ = hubs.withLock { $0.entries.removeValue(forKey: id) }
    }

    static var all: [(Int, Entry)] {
        hubs.withLock { $0.entries.sorted { $0.key < $1.key } }
    }
}
