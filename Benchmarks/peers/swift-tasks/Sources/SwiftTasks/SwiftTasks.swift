// SwiftTasks: what one more suspended Swift Concurrency task costs, the
// peer of green-bench's compact_parked_bytes_per_greenlet.
//
//   SwiftTasks [--count N] [--runs R] [--quick] [--json]
//
//   swift_task_parked_bytes_per_task          RSS growth per task, N tasks
//                                             suspended in withUnsafeContinuation
//   swift_task_checked_parked_bytes_per_task  the same in withCheckedContinuation
//                                             (its canary object included)
//
// Measured as green-bench measures a parked greenlet: malloc_trim(0), RSS
// from /proc/self/statm, N tasks started from one thread (Task.detached, on
// Swift's global executor), each storing its continuation in a list (a
// greenlet's counterpart is its node in the Event's wait list) and
// suspending; once all N have stored theirs, RSS again; then all are
// resumed and awaited. The task handles are kept in an array reserved up
// front, as green-bench keeps its greenlets. N defaults to 1,000,000
// (--quick: 100,000); each figure is the median of R runs (default 3,
// --quick 1), each run in a child process of its own (this program with
// --child): the tasks run on the pool's threads, whose malloc arenas keep
// some of what a run freed even after malloc_trim, so a second run in one
// process would reuse it and show less growth. (green-bench's greenlets
// live on one thread's arena, which malloc_trim empties: it measures its
// runs in one process, each run the same.)
import Glibc
import Synchronization

/// The parked tasks' continuations: what resumes them (the counterpart of
/// an Event's wait list).
final class Parking: Sendable {
    private let continuations: Mutex<[UnsafeContinuation<Void, Never>]>
    private let checked: Mutex<[CheckedContinuation<Void, Never>]>
    private let parkedCount = Atomic<Int>(0)
    private let doneCount = Atomic<Int>(0)

    init(capacity: Int) {
        var a: [UnsafeContinuation<Void, Never>] = []
        a.reserveCapacity(capacity)
        continuations = Mutex(a)
        var b: [CheckedContinuation<Void, Never>] = []
        b.reserveCapacity(capacity)
        checked = Mutex(b)
    }

    var parked: Int { parkedCount.load(ordering: .acquiring) }
    var done: Int { doneCount.load(ordering: .acquiring) }

    func park(checked useChecked: Bool) async {
        if useChecked {
            await withCheckedContinuation { c in
                checked.withLock { $0.append(c) }
                parkedCount.add(1, ordering: .releasing)
            }
        } else {
            await withUnsafeContinuation { c in
                continuations.withLock { $0.append(c) }
                parkedCount.add(1, ordering: .releasing)
            }
        }
        doneCount.add(1, ordering: .releasing)
    }

    func resumeAll() {
        continuations.withLock { cs in
            for c in cs { c.resume() }
            cs.removeAll()
        }
        checked.withLock { cs in
            for c in cs { c.resume() }
            cs.removeAll()
        }
    }
}

/// Resident set size in bytes (/proc/self/statm's second field, in pages),
/// read into a stack buffer so that measuring does not allocate.
func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buf -> Int in
        let n = read(fd, buf.baseAddress!, buf.count)
        guard n > 0 else { return 0 }
        var field = 0, pages = 0
        for byte in buf[0..<n] {
            if byte == UInt8(ascii: " ") {
                field += 1
                if field == 2 { break }
            } else if field == 1, byte >= 48, byte <= 57 {
                pages = pages * 10 + Int(byte - 48)
            }
        }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// glibc's malloc_trim(0) (malloc.h is not in the Glibc module): what an
/// earlier run freed goes back to the kernel before the next measures.
func trimMalloc() {
    typealias Trim = @convention(c) (Int) -> Int32
    if let f = dlsym(nil, "malloc_trim") { _ = unsafeBitCast(f, to: Trim.self)(0) }
}

/// Runs this program with `arguments` and returns the number it prints.
func runChild(_ arguments: [String]) -> Double {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { usage("pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    let argv = (["/proc/self/exe"] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    close(fds[1])
    guard rc == 0 else { usage("posix_spawn failed: \(rc)") }
    var output: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 256)
    while true {
        let n = read(fds[0], &buf, buf.count)
        if n <= 0 { break }
        output += buf[0..<n]
    }
    close(fds[0])
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let text = String(decoding: output.filter { $0 > 32 }, as: UTF8.self)
    guard status == 0, let v = Double(text) else { usage("child run failed: \(arguments) printed \(text)") }
    return v
}

/// Waits on this thread, outside Swift Concurrency, until `done` holds.
func poll(until done: () -> Bool) {
    while !done() { usleep(1000) }
}

/// RSS growth per task with `count` tasks suspended on continuations.
func parkedBytesPerTask(_ count: Int, checked: Bool) -> Double {
    trimMalloc()
    let parking = Parking(capacity: count)
    let before = residentBytes()
    var tasks: [Task<Void, Never>] = []
    tasks.reserveCapacity(count)
    for _ in 0..<count {
        tasks.append(Task.detached { await parking.park(checked: checked) })
    }
    poll { parking.parked == count }
    // The last continuation is stored just before its task suspends: let
    // the pool's threads finish suspending them.
    usleep(20_000)
    let after = residentBytes()
    parking.resumeAll()
    poll { parking.done == count }
    tasks.removeAll()
    return Double(after - before) / Double(count)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func usage(_ message: String, status: Int32 = 2) -> Never {
    let text = "SwiftTasks: \(message)\nusage: SwiftTasks [--count N] [--runs R] [--quick] [--json]\n"
    let fd: Int32 = status == 0 ? 1 : 2
    _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    exit(status)
}

@main
struct SwiftTasks {
    static func main() {
        var count: Int?
        var runs: Int?
        var quick = false
        var json = false
        var child: String?
        var args = CommandLine.arguments.dropFirst()
        while let arg = args.popFirst() {
            switch arg {
            case "--count", "--runs":
                guard let v = args.popFirst().flatMap({ Int($0) }), v > 0 else { usage("\(arg) needs a positive number") }
                if arg == "--count" { count = v } else { runs = v }
            case "--child":
                // One run, its figure on stdout: --child unsafe|checked.
                guard let kind = args.popFirst(), kind == "unsafe" || kind == "checked" else { usage("--child unsafe|checked") }
                child = kind
            case "--quick": quick = true
            case "--json": json = true
            case "-h", "--help": usage("bytes per suspended Swift task", status: 0)
            default: usage("unknown argument: \(arg)")
            }
        }
        let n = count ?? (quick ? 100_000 : 1_000_000)
        if let child {
            print(parkedBytesPerTask(n, checked: child == "checked"))
            return
        }
        let r = runs ?? (quick ? 1 : 3)
        let figures: [(key: String, checked: Bool, what: String)] = [
            ("swift_task_parked_bytes_per_task", false,
             "RSS growth per task, \(n) tasks suspended in withUnsafeContinuation"),
            ("swift_task_checked_parked_bytes_per_task", true,
             "the same in withCheckedContinuation"),
        ]
        var results: [(String, Double, String)] = []
        for f in figures {
            var xs: [Double] = []
            for _ in 0..<r { xs.append(runChild(["--child", f.checked ? "checked" : "unsafe", "--count", "\(n)"])) }
            results.append((f.key, median(xs), f.what))
        }
        if json {
            let body = results.map { "\"\($0.0)\": \(Int($0.1.rounded()))" }.joined(separator: ", ")
            print("{\(body), \"runs\": \(r), \"count\": \(n)}")
        } else {
            print("Swift Concurrency suspended tasks (median of \(r) runs)")
            for (key, value, what) in results {
                let k = key + String(repeating: " ", count: max(1, 42 - key.count))
                let v = String(Int(value.rounded()))
                print("  \(k)\(v + String(repeating: " ", count: max(1, 8 - v.count)))\(what)")
            }
        }
    }
}
