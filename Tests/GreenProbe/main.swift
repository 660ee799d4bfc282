// A helper executable for the tests: scenarios that must end the process
// (stack overflows, exclusivity violations) run here, in a child process,
// and the tests check how it died and what it printed.
//
//   GreenProbe ok                    prints "ok", exits 0
//   GreenProbe overflow              unbounded recursion in a greenlet named
//                                    "deep-recursion" with a 64 KiB stack:
//                                    must die by SIGABRT naming it
//   GreenProbe overflow-canary       recursion bounded to run a few KiB past
//                                    the bottom of the stack, then a switch;
//                                    for GREEN_STACK_GUARD=canary
//   GreenProbe overflow-canary-finish the same, then the greenlet returns:
//                                    its last switch-out checks the canary
//   GreenProbe overflow-unnamed      like overflow, no name: prints the
//                                    greenlet's id, then must die naming
//                                    it Greenlet-<id>
//   GreenProbe overflow-renamed      like overflow, renamed after it started
//   GreenProbe emfile-server         an echo StreamServer in a process limited
//                                    to 64 fds, run out of descriptors by its
//                                    own clients: must back off, then serve
//                                    again once they close; prints
//                                    "exhaustions N" and "recovered"
//   GreenProbe exclusivity-conflict  a greenlet that conflicts with its own
//                                    inout access across a switch: Swift's
//                                    exclusivity check must still catch it
//   GreenProbe gdb-targets           for the gdb script's test: greenlets
//                                    "dedicated-1", "dedicated-2" parked in
//                                    parkedOnItsOwnStack, "compact-1",
//                                    "compact-2" in parkedOnTheRunStack (on
//                                    Event.wait), the main greenlet asleep;
//                                    on a second hub (HubThread "other-main")
//                                    "remote-1" parked in parkedOnItsOwnStack;
//                                    prints "ready pid=P dedicated=ID,ID
//                                    compact=ID,ID compactMode=BOOL", then
//                                    sleeps 120 s at most
//   GreenProbe main-hub[-throws|-stop] the main hub as Swift's main and
//                                    default executors (MainHub.swift)
//   GreenProbe diagnostics-plain     makes each diagnostic of the runtime once
//                                    (run with GREEN_STACK_MODE=bogus): an
//                                    unobserved error of greenlet "doomed", a
//                                    blocked hub, a compact image over the
//                                    limit; prints "compact BOOL" and
//                                    "reports N" (blocked-hub reports)
//   GreenProbe diagnostics-bootstrap the same after LoggingSystem.bootstrap
//                                    with a handler that prints each entry on
//                                    stdout: "log|LABEL|LEVEL|MESSAGE|k=v;..."
import Glibc
import Green
import Logging

let probeStackSize = 64 * 1024

/// Keeps values alive and opaque to the optimizer.
nonisolated(unsafe) var sink: UInt64 = 0

/// Address of a byte in the caller's frame.
@inline(never)
func frameAddress(_ p: UnsafeMutableRawBufferPointer) -> UInt {
    UInt(bitPattern: p.baseAddress)
}

/// Recurses until the stack runs out. Each frame fills a 512-byte local
/// buffer and uses it after the recursive call returns, so neither the
/// frame nor the recursion can be optimized away.
@inline(never)
func recurseForever(_ depth: UInt64) -> UInt64 {
    var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &buffer) { p in
        for i in 0..<p.count { p[i] = UInt8(truncatingIfNeeded: depth &+ UInt64(i)) }
    }
    let below = recurseForever(depth &+ 1)
    sink &+= buffer.0 &+ buffer.15
    return below &+ buffer.7
}

/// Recurses `depth` frames of 128 bytes of locals each, then waits for
/// `event` twice (parking with a deep stack), and sums on the way back.
@inline(never)
func recurseAndWait(depth: Int, _ event: Event) throws -> UInt64 {
    var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &buffer) { p in
        for i in 0..<p.count { p[i] = UInt8(truncatingIfNeeded: depth &+ i) }
    }
    let below: UInt64
    if depth == 0 {
        try event.wait()
        try Green.sleep(0)
        below = 0
    } else {
        below = try recurseAndWait(depth: depth - 1, event)
    }
    return below &+ buffer.0 &+ buffer.15
}

/// Recurses until a frame lies more than `limit` bytes below `start` (the
/// address of a local at the greenlet's first frame), then unwinds.
@inline(never)
func recurseUntil(start: UInt, limit: UInt, _ depth: UInt64) -> UInt64 {
    var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    let here = withUnsafeMutableBytes(of: &buffer) { p -> UInt in
        for i in 0..<p.count { p[i] = UInt8(truncatingIfNeeded: depth &+ UInt64(i) &+ 0x5a) }
        return frameAddress(p)
    }
    if start &- here > limit { return buffer.3 }
    let below = recurseUntil(start: start, limit: limit, depth &+ 1)
    sink &+= buffer.0
    return below &+ buffer.9
}

/// Where the gdb script's test finds its greenlets parked, by name: a
/// function each, never inlined, with work after the wait so that the
/// wait is no tail call.
@inline(never)
func parkedOnItsOwnStack(_ event: Event) throws {
    try event.wait()
    sink &+= 1
}

@inline(never)
func parkedOnTheRunStack(_ event: Event) throws {
    try event.wait()
    sink &+= 2
}

/// Unbuffered, so nothing is lost when the process aborts.
func writeLine(_ fd: Int32, _ text: String) {
    var line = text + "\n"
    line.withUTF8 { buf in
        var offset = 0
        while offset < buf.count {
            let n = write(fd, buf.baseAddress! + offset, buf.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}

final class Box {
    var n = 0
}

@inline(never)
func bumpAcrossSwitch(_ x: inout Int, reading box: Box) throws {
    x += 1
    try Green.sleep(0)
    // `box.n` is the very property `x` is an inout access to: a read here
    // conflicts with the caller's modify access, which must still be open
    // after the switch.
    let seen = box.n
    x += seen
}

/// Prints how the hub's stacks are guarded, e.g. "guards madvise=2 mprotect=0 canary=0".
func printGuards() {
    let s = Hub.current.stackStats
    writeLine(1, "guards madvise=\(s.madviseGuarded) mprotect=\(s.mprotectGuarded) canary=\(s.canaryOnly)")
}

func run(_ scenario: String) throws -> Int32 {
    switch scenario {
    case "main-hub", "main-hub-throws", "main-hub-stop":
        // See MainHub.swift.
        mainHubScenario(scenario)

    case "ok":
        let g = spawn { 42 }
        writeLine(1, "ok \(try g.get())")
        return 0

    case "overflow":
        let g = spawn(name: "deep-recursion", stackSize: probeStackSize, stackMode: .dedicated) { () -> UInt64 in
            printGuards()
            return recurseForever(0)
        }
        _ = try? g.join()
        writeLine(1, "overflow not detected")
        return 1

    case "overflow-compact":
        let g = spawn(name: "deep-recursion", stackMode: .compact) { () -> UInt64 in
            writeLine(1, "compact \(AnyGreenlet.current.isCompact)")
            return recurseForever(0)
        }
        _ = try? g.join()
        writeLine(1, "overflow not detected")
        return 1

    case "compact-large-image":
        // A compact greenlet parked with more stack than the report limit,
        // twice: one report.
        let deep = try parkADeepCompactGreenletAndLetItGo()
        // deep-parker runs again (restored), yields to a second one, and is
        // saved a second time: still one report.
        let second = spawn(name: "second", stackMode: .compact) {}
        try second.join()
        let expected = try spawn(stackMode: .dedicated) { () -> UInt64 in
            let e = Event()
            e.set()
            return try recurseAndWait(depth: 64, e)
        }.get()
        writeLine(1, "compact \(deep.isCompact); values survived \(try deep.get() == expected); "
                     + "saves \(Hub.current.compactStats.saves)")
        return 0

    case "overflow-canary":
        let g = spawn(name: "deep-recursion", stackSize: probeStackSize, stackMode: .dedicated) { () throws -> UInt64 in
            printGuards()
            var top: UInt64 = 0
            let start = withUnsafeMutableBytes(of: &top) { frameAddress($0) }
            // The stack's top is at most a few frames above `start`, so
            // this ends 4-6 KiB below the bottom of the stack: through its
            // canary, into the unprotected guard zone under it.
            let r = recurseUntil(start: start, limit: UInt(probeStackSize + 4096), 0)
            // The canary is checked when the greenlet switches out.
            try Green.sleep(0)
            return r &+ top
        }
        _ = try? g.join()
        writeLine(1, "overflow not detected")
        return 1

    case "overflow-canary-finish":
        let g = spawn(name: "deep-recursion", stackSize: probeStackSize, stackMode: .dedicated) { () -> UInt64 in
            var top: UInt64 = 0
            let start = withUnsafeMutableBytes(of: &top) { frameAddress($0) }
            return recurseUntil(start: start, limit: UInt(probeStackSize + 4096), 0) &+ top
        }
        _ = try? g.join()
        writeLine(1, "overflow not detected")
        return 1

    case "overflow-unnamed":
        let g = spawn(stackSize: probeStackSize, stackMode: .dedicated) { () -> UInt64 in recurseForever(0) }
        writeLine(1, "id \(g.id)")
        _ = try? g.join()
        writeLine(1, "overflow not detected")
        return 1

    case "overflow-renamed":
        let go = Event()
        let g = spawn(name: "before-rename", stackSize: probeStackSize, stackMode: .dedicated) { () throws -> UInt64 in
            try go.wait()
            return recurseForever(0)
        }
        try Green.sleep(0)
        g.name = "deep-recursion"
        go.set()
        _ = try? g.join()
        writeLine(1, "overflow not detected")
        return 1

    case "exclusivity-conflict":
        let box = Box()
        let g = spawn(name: "conflicting") { try bumpAcrossSwitch(&box.n, reading: box) }
        try g.join()
        writeLine(1, "conflict not detected: \(box.n)")
        return 1

    case "gdb-targets":
        let never = Event()
        let dedicated = (1...2).map { i in
            spawn(name: "dedicated-\(i)", stackMode: .dedicated) { try parkedOnItsOwnStack(never) }
        }
        // compact-1 parks first, and compact-2 then takes the run stack:
        // compact-1's stack is saved on the heap, compact-2's stays put.
        let compact = (1...2).map { i in
            spawn(name: "compact-\(i)", stackMode: .compact) { try parkedOnTheRunStack(never) }
        }
        try Green.sleep(0)   // the run queue is FIFO: all four run until they park
        // A second hub, with a greenlet parked there; the one spawned
        // after it runs once it has parked (FIFO again) and says so.
        let other = try HubThread.start(name: "other-main")
        let remoteParked = AsyncResult<Bool>()
        _ = other.handle.spawn(name: "remote-1") { try parkedOnItsOwnStack(Event()) }
        _ = other.handle.spawn { _ = remoteParked.set(true) }
        _ = try remoteParked.get(timeout: 10)
        func ids(_ gs: [Greenlet<Void>]) -> String { gs.map { String($0.id) }.joined(separator: ",") }
        writeLine(1, "ready pid=\(getpid()) dedicated=\(ids(dedicated)) compact=\(ids(compact)) "
                     + "compactMode=\(compact[0].isCompact)")
        // The test takes a core file and kills the process: this bounds
        // its life if the test does not.
        try Green.sleep(120)
        return 0

    case "diagnostics-plain":
        return try makeDiagnostics()

    case "diagnostics-bootstrap":
        LoggingSystem.bootstrap { label in PrintingLogHandler(label: label) }
        return try makeDiagnostics()

    case "emfile-server":
        return try emfileServer()

    case "emfile-sheds-idle":
        return try emfileShedsIdle()

    default:
        writeLine(2, "GreenProbe: unknown scenario '\(scenario)'")
        return 2
    }
}

struct ProbeError: Error, CustomStringConvertible {
    var description: String { "ProbeError(boom)" }
}

/// Starts "deep-parker", a compact greenlet that parks 64 frames deep,
/// with more stack than the report limit (set to 4 KiB here); another
/// compact greenlet then takes the run stack, so that deep-parker's image
/// is saved. Then lets deep-parker go on (it runs when this one yields),
/// and returns it.
func parkADeepCompactGreenletAndLetItGo() throws -> Greenlet<UInt64> {
    Hub.current.compactReportLimit = 4096
    let go = Event()
    let deep = spawn(name: "deep-parker", stackMode: .compact) { () -> UInt64 in
        try recurseAndWait(depth: 64, go)
    }
    try spawn(name: "other", stackMode: .compact) {}.join()
    go.set()
    return deep
}

/// Each of the runtime's diagnostics, once (see diagnostics-plain).
func makeDiagnostics() throws -> Int32 {
    // An unobserved error (the first spawn also reads GREEN_STACK_MODE).
    do {
        let doomed = spawn(name: "doomed") { () throws -> Void in throw ProbeError() }
        try doomed.join()
    }
    // A compact greenlet parked with more stack than the limit.
    let deep = try parkADeepCompactGreenletAndLetItGo()
    _ = try deep.get()
    writeLine(1, "compact \(deep.isCompact)")
    // The main greenlet blocks its hub's thread in the kernel while a
    // greenlet waits: one blocked-hub report (no backtrace: a thread in a
    // system call is not signalled).
    HubMonitor.threshold = 0.05
    let before = HubMonitor.reportCount
    let waiting = spawn(name: "waiting") { try Green.sleep(0.3) }
    var request = timespec(tv_sec: 0, tv_nsec: 200_000_000)
    var left = timespec()
    while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
    // The watchdog finishes its report on its own thread (2 s at most).
    for _ in 0..<200 where HubMonitor.reportCount == before { usleep(10_000) }
    try waiting.join()
    writeLine(1, "reports \(HubMonitor.reportCount - before)")
    return 0
}

/// Prints each entry on stdout, one line: "log|LABEL|LEVEL|MESSAGE|k=v;k=v"
/// (metadata sorted by key; an array's values joined by ",").
struct PrintingLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = all.sorted { $0.key < $1.key }.map { key, value -> String in
            if case .array(let values) = value { return "\(key)=\(values.map { "\($0)" }.joined(separator: ","))" }
            return "\(key)=\(value)"
        }
        writeLine(1, "log|\(label)|\(event.level)|\(event.message)|\(fields.joined(separator: ";"))")
    }
}

/// Lowers this process's soft limit on open files to `count`; says so on
/// stderr where it cannot.
func limitOpenFiles(to count: rlim_t) -> Bool {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = count
    guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
        writeLine(2, "setrlimit failed")
        return false
    }
    return true
}

/// An echo server that runs out of file descriptors and must recover.
func emfileServer() throws -> Int32 {
    guard limitOpenFiles(to: 64) else { return 4 }
    let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { conn, _ in
        while true {
            let data = try conn.recv()
            if data.isEmpty { return }
            try conn.sendAll(data)
        }
    }
    server.start()
    let address = server.address
    // Connect until this process has no descriptor left.
    var clients: [Socket] = []
    while true {
        let s: Socket
        do {
            s = try Socket()
        } catch let e as SocketError where e.errno == EMFILE {
            break
        }
        clients.append(s)
        try s.connect(to: address, timeout: 5)
    }
    // Free one descriptor and take it again with one more client: its
    // connection waits in the backlog while accept finds no descriptor.
    clients.removeLast().close()
    let last = try Socket()
    try last.connect(to: address, timeout: 5)
    clients.append(last)
    var waited = 0
    while server.descriptorExhaustions == 0 && waited < 500 {
        try Green.sleep(0.01)
        waited += 1
    }
    writeLine(1, "exhaustions \(server.descriptorExhaustions)")
    // Let the server breathe: every client goes away.
    for c in clients { c.close() }
    clients.removeAll()
    // A new client is served.
    let fresh = try Socket.connect(host: "127.0.0.1", port: address.port, timeout: 5)
    try fresh.sendAll("ping")
    var got: [UInt8] = []
    while got.count < 4 {
        let chunk = try fresh.recv(timeout: 5)
        if chunk.isEmpty { break }
        got += chunk
    }
    fresh.close()
    writeLine(1, String(decoding: got, as: UTF8.self) == "ping" ? "recovered" : "not served: \(got)")
    try server.stop(timeout: 5)
    return server.isServing ? 1 : 0
}

/// An echo server whose connections wait for their next message listed in
/// `IdleConnections`, with fewer descriptors than clients: each new client
/// must still be served, the longest-idle connections being closed for it.
func emfileShedsIdle() throws -> Int32 {
    let clientCount = 80
    // The clients' sockets are made first and moved above the limit to
    // come (descriptors already open stay usable), so that only the
    // server's descriptors count against it.
    var clients: [Socket] = []
    for i in 0..<clientCount {
        let s = try Socket()
        let high = fcntl(s.fd, F_DUPFD_CLOEXEC, Int32(500 + i))
        guard high >= 500 else { writeLine(2, "F_DUPFD failed"); return 4 }
        s.close()
        clients.append(Socket(adopting: high, family: AF_INET, type: .stream))
    }
    guard limitOpenFiles(to: 48) else { return 4 }
    let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { conn, _ in
        let entry = IdleConnections.Entry(conn)
        while true {
            let data = try IdleConnections.current.whileIdle(entry) { try conn.recv() }
            if data.isEmpty { return }
            try conn.sendAll(data)
        }
    }
    server.start()
    // One after another, each client connects and is answered, though the
    // server has room for fewer than half of them.
    var served = 0
    for (i, c) in clients.enumerated() {
        try c.connect(to: server.address, timeout: 5)
        let message = Array("ping \(i)".utf8)
        try c.sendAll(message)
        var got: [UInt8] = []
        while got.count < message.count {
            let chunk = try c.recv(timeout: 5)
            if chunk.isEmpty { break }
            got += chunk
        }
        if got == message { served += 1 }
    }
    // The first client waited longest: its connection was closed.
    let first = try clients[0].recv(timeout: 5)
    // The last is still served.
    try clients[clientCount - 1].sendAll("again")
    let again = try clients[clientCount - 1].recv(timeout: 5)
    writeLine(1, "served \(served) of \(clientCount); idle closed \(server.idleConnectionsClosed); " +
                 "exhaustions \(server.descriptorExhaustions); first closed \(first.isEmpty); " +
                 "last answered \(String(decoding: again, as: UTF8.self) == "again")")
    for c in clients { c.close() }
    try server.stop(timeout: 5)
    return 0
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    writeLine(2, "usage: GreenProbe <scenario>")
    exit(2)
}
do {
    exit(try run(arguments[1]))
} catch {
    writeLine(2, "GreenProbe: \(error)")
    exit(3)
}
