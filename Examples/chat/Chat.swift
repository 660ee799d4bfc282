// chat: a line-based chat room over TCP on greenlets.
//
//   swift run -c release chat --port 9100
//   nc 127.0.0.1 9100            (from several terminals)
//
// Each connection has two greenlets: one reads the client's lines and
// publishes them to the room, one writes what the room sends it. The room
// gives every member its own bounded outbox (a `Queue`), so a slow client
// only fills its own queue: when it is full, that member is dropped
// instead of slowing the whole room. `/nick NAME` renames, `/who` lists
// the members, `/quit` leaves; a line over 4 KiB ends the session.
// Lines are read with a `BufferedReader`, and the writer gathers what
// waits in the outbox into one write with a `BufferedWriter`.
import ArgumentParser
import Foundation
import Glibc
import Green

@main
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat", abstract: "A line-based TCP chat room on greenlets.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port (0 picks a free one).")
    var port: UInt16 = 9100

    @Option(help: "Lines a member may have waiting before it is dropped.")
    var outbox = 256

    mutating func run() throws {
        let room = Room(outboxSize: outbox)
        let server = try StreamServer(on: SocketAddress(ip: host, port: port)) { conn, peer in
            try room.serve(conn, peer: peer)
        }
        print("chat room on \(server.address)")
        fflush(nil)
        try server.serveForever()
    }
}

/// The members and their outboxes; confined to the server's hub.
final class Room {
    final class Member {
        var nick: String
        let outbox: Queue<String>
        init(nick: String, outboxSize: Int) {
            self.nick = nick
            outbox = Queue(maxSize: outboxSize)
        }
    }

    private var members: [ObjectIdentifier: Member] = [:]
    private let outboxSize: Int
    private var nextGuest = 1
    /// What a line's ends lose before it is read.
    static let blanks = CharacterSet(charactersIn: " \t")

    init(outboxSize: Int) { self.outboxSize = outboxSize }

    /// Sends `line` to every member but `sender`; drops members whose
    /// outbox is full.
    func broadcast(_ line: String, from sender: Member?) {
        for (id, m) in members where m !== sender {
            do {
                try m.outbox.putNowait(line)
            } catch {
                m.outbox.close()
                members[id] = nil
            }
        }
    }

    func serve(_ conn: Socket, peer: SocketAddress) throws {
        let me = Member(nick: "guest\(nextGuest)", outboxSize: outboxSize)
        nextGuest += 1
        members[ObjectIdentifier(me)] = me
        defer {
            members[ObjectIdentifier(me)] = nil
            me.outbox.close()
            broadcast("* \(me.nick) left\n", from: me)
        }
        broadcast("* \(me.nick) joined\n", from: me)
        try withScope { scope in
            // The writer ends when the outbox is closed (we left, or were
            // dropped for being too slow).
            scope.spawn {
                let writer = BufferedWriter(conn)
                for line in me.outbox {
                    try writer.write(line)
                    if me.outbox.isEmpty { try writer.flush() }
                }
                try writer.flush()
                try? conn.shutdown(Int32(SHUT_WR))
            }
            try conn.sendAll("welcome, \(me.nick). /nick NAME, /who, /quit\n")
            let lines = BufferedReader(conn).lines(maxLength: 4096)
            for line in lines {
                if me.outbox.isClosed || !handle(line.trimmingCharacters(in: Room.blanks), from: me) { break }
            }
            if case .lineTooLong(let limit)? = lines.error as? BufferedReadError {
                try? me.outbox.putNowait("* a line over \(limit) bytes: goodbye\n")
            } else {
                try lines.check()
            }
            me.outbox.close()
        }
    }

    /// Acts on one line; false means the member leaves.
    private func handle(_ text: String, from me: Member) -> Bool {
        if text.isEmpty { return true }
        if text == "/quit" { return false }
        if text == "/who" {
            let names = members.values.map(\.nick).sorted().joined(separator: ", ")
            try? me.outbox.putNowait("* here: \(names)\n")
        } else if text.hasPrefix("/nick ") {
            let old = me.nick
            me.nick = String(text.dropFirst(6).prefix(32))
            broadcast("* \(old) is now \(me.nick)\n", from: nil)
        } else {
            broadcast("\(me.nick): \(text)\n", from: me)
        }
        return true
    }
}
