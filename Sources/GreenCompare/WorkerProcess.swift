import CGreenLinux
import Foundation
import Glibc

/// One worker process of the processes model, seen from the parent: a
/// fresh run of the same program (posix_spawn, never fork: forking a
/// multi-threaded Swift process copies locks other threads hold, and the
/// child may deadlock in malloc or the runtime), connected by a Unix
/// stream socket on which requests and replies travel as length-prefixed
/// frames. Blocking calls: the processes model's parent side runs on OS
/// threads.
///
/// The worker dies with the thread that started it (PR_SET_PDEATHSIG) and
/// exits when its socket closes, so no worker outlives its parent; every
/// worker is reaped (waitpid) when it is closed or found dead.
///
/// Not `Sendable`: `fd` and `reaped` change without a lock. It is used by
/// one thread at a time: a `ModelTask`'s (not Sendable), or a pool
/// thread's `WorkerSlot`.
final class WorkerProcess {
    let pid: pid_t
    private var fd: Int32
    private var reaped = false

    /// The environment variable naming the worker's socket: its presence
    /// turns a program into a worker (see `ProcessWorker.serveIfWorker`).
    static let socketVariable = "GREEN_COMPARE_WORKER_FD"

    /// Starts `executable` as a worker.
    init(executable: String) throws {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw WorkerStartError(reason: "socketpair: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 onto 3 clears close-on-exec there: the worker gets fd 3 only.
        posix_spawn_file_actions_adddup2(&actions, pair[1], 3)
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable), strdup("--green-compare-worker"), nil]
        defer { for p in argv { free(p) } }
        var environment = ProcessInfo.processInfo.environment
        environment[WorkerProcess.socketVariable] = "3"
        environment["GREEN_COMPARE_PARENT"] = String(getpid())
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, nil, argv, envp)
        Glibc.close(pair[1])
        guard rc == 0 else {
            Glibc.close(pair[0])
            throw WorkerStartError(reason: "posix_spawn \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
        fd = pair[0]
    }

    deinit { close() }

    /// Sends a request: the job's name and its encoded input.
    func send(job: String, input: Data) throws {
        var frame = Data()
        let name = Array(job.utf8)
        frame.append(contentsOf: withUnsafeBytes(of: UInt32(2 + name.count + input.count).littleEndian) { Array($0) })
        frame.append(contentsOf: withUnsafeBytes(of: UInt16(name.count).littleEndian) { Array($0) })
        frame.append(contentsOf: name)
        frame.append(input)
        guard try FrameIO.writeAll(fd, frame) else { throw died(job: job) }
    }

    /// Waits for the reply to the last request: the encoded output, or the
    /// job's failure, or the worker's death.
    func receive(job: String) throws -> Data {
        guard let reply = try FrameIO.readFrame(fd), let status = reply.first else { throw died(job: job) }
        let body = reply.dropFirst()
        switch status {
        case 0: return Data(body)
        case 2: throw JobError(job: job, kind: .unknownJob)
        default: throw JobError(job: job, kind: .failed(message: String(decoding: body, as: UTF8.self)))
        }
    }

    /// The worker died: reaps it and says how.
    private func died(job: String) -> JobError {
        JobError(job: job, kind: .workerDied(how: reap()))
    }

    /// Sends SIGKILL (a task's worker that must stop now).
    func kill() {
        if !reaped { Glibc.kill(pid, SIGKILL) }
    }

    /// Closes the socket (the worker exits when it sees end of stream) and
    /// reaps the worker.
    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
        _ = reap()
    }

    /// Waits for the worker to exit (once) and describes how it ended.
    @discardableResult
    private func reap() -> String {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
        if reaped { return "already reaped" }
        var status: Int32 = 0
        var rc: pid_t
        repeat { rc = waitpid(pid, &status, 0) } while rc < 0 && errno == EINTR
        reaped = true
        guard rc == pid else { return "lost (waitpid: \(String(cString: strerror(errno))))" }
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "killed by signal \(signal)" + (signal == SIGKILL ? " (SIGKILL)" : signal == SIGSEGV ? " (SIGSEGV)" : "")
    }
}

struct WorkerStartError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

/// Length-prefixed frames (a little-endian UInt32 length, then the bytes)
/// over a blocking fd.
enum FrameIO {
    /// The largest frame either side accepts: a corrupt length must not
    /// make a process allocate gigabytes.
    static let maxFrame = 256 * 1024 * 1024

    /// Writes everything; false if the peer is gone.
    static func writeAll(_ fd: Int32, _ data: Data) throws -> Bool {
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE || errno == ECONNRESET { return false }
                    throw WorkerStartError(reason: "send: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
            return true
        }
    }

    /// Reads one frame; nil at end of stream (or a reset).
    static func readFrame(_ fd: Int32) throws -> Data? {
        var header = [UInt8](repeating: 0, count: 4)
        guard try readExactly(fd, &header, 4) else { return nil }
        let length = Int(UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24)
        guard length <= maxFrame else {
            throw WorkerStartError(reason: "a frame of \(length) bytes, more than the \(maxFrame) allowed: the stream is corrupt")
        }
        var body = [UInt8](repeating: 0, count: length)
        guard try readExactly(fd, &body, length) else { return nil }
        return Data(body)
    }

    private static func readExactly(_ fd: Int32, _ buffer: inout [UInt8], _ count: Int) throws -> Bool {
        var offset = 0
        while offset < count {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress! + offset, count - offset, 0) }
            if n == 0 { return false }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { return false }
                throw WorkerStartError(reason: "recv: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        return true
    }
}

/// The worker side of the processes model.
public enum ProcessWorker {
    /// Call first thing in `main` of a program that uses the processes
    /// model: when this run is a worker (started by `Model(.processes)`),
    /// it serves `jobs` until its parent goes and never returns; otherwise
    /// it returns at once.
    public static func serveIfWorker(jobs: [AnyJob]) {
        guard let text = getenv(WorkerProcess.socketVariable), let fd = Int32(String(cString: text)) else { return }
        // Die with the parent even while busy with a long job.
        _ = green_set_parent_death_signal(SIGKILL)
        if let parent = getenv("GREEN_COMPARE_PARENT"), let ppid = Int32(String(cString: parent)), getppid() != ppid {
            exit(0)   // the parent is already gone
        }
        signal(SIGPIPE, SIG_IGN)
        let byName = Dictionary(jobs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let context = JobContext(model: .processes)
        while true {
            guard let request = try? FrameIO.readFrame(fd), request.count >= 2 else { exit(0) }
            let bytes = [UInt8](request)
            let nameLength = Int(UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
            guard 2 + nameLength <= bytes.count else { exit(3) }
            var name = String(decoding: bytes[2..<(2 + nameLength)], as: UTF8.self)
            let spawned = name.hasPrefix(Model.delayedPrefix)
            if spawned { name.removeFirst(Model.delayedPrefix.count) }
            let input = Data(bytes[(2 + nameLength)...])
            var reply: Data
            if let job = byName[name] {
                do {
                    reply = Data([0]) + (try (spawned ? job.runSpawned : job.run)(input, context))
                } catch {
                    reply = Data([1]) + Data("\(error)".utf8)
                }
            } else {
                reply = Data([2])
            }
            var frame = Data(withUnsafeBytes(of: UInt32(reply.count).littleEndian) { Array($0) })
            frame.append(reply)
            guard (try? FrameIO.writeAll(fd, frame)) == true else { exit(0) }
        }
    }
}
