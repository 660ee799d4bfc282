import CGreenLinux
import Glibc

/// A child process with cooperative pipes and a cooperative `wait`, like
/// gevent's `subprocess.Popen`. Its standard streams can be connected to
/// this process (`.pipe`): the parent's ends are `Socket`s (Unix stream
/// socket pairs, which children read and write like pipes), so reading the
/// child's output or feeding its input blocks only the calling greenlet.
///
/// ```swift
/// let child = try Subprocess(["cat"])
/// let (out, _) = try child.communicate(input: Array("hello".utf8))
/// ```
///
/// `wait` parks the greenlet until the child exits (on Linux 5.3+ through
/// a pidfd watched by the hub; otherwise by polling `waitpid` with a short
/// back-off). A child not waited for is reaped in the background when the
/// object goes away: no zombies. Confined to the thread that made it (its
/// pipes are that thread's sockets).
public final class Subprocess {
    /// Where a child's standard stream goes.
    public enum Stream: Sendable {
        /// This process's own stream.
        case inherit
        /// A socket pair; the parent's end is `stdin`/`stdout`/`stderr`.
        case pipe
        /// /dev/null.
        case null
    }

    /// How a child ended.
    public enum Status: Equatable, Sendable, CustomStringConvertible {
        /// It exited with this status (0 to 255).
        case exited(Int32)
        /// A signal (this number) ended it.
        case signaled(Int32)

        /// "exited with status N" or "killed by signal N".
        public var description: String {
            switch self {
            case .exited(let code): return "exited with status \(code)"
            case .signaled(let sig): return "killed by signal \(sig)"
            }
        }
    }

    /// The child's process id.
    public let pid: pid_t
    /// The parent's end of the child's standard input, when piped: write
    /// to it, and close it to send end of file.
    public let stdin: Socket?
    /// The parent's end of the child's standard output, when piped.
    public let stdout: Socket?
    /// The parent's end of the child's standard error, when piped.
    public let stderr: Socket?
    /// Set once the child has been reaped.
    public private(set) var status: Status?
    private var pidfd: Int32

    /// Starts `arguments[0]` (searched on `PATH`) with `arguments`, and
    /// `environment` if given (else this process's). Never blocks.
    /// Throws `SubprocessError` if it cannot be started.
    public init(_ arguments: [String], environment: [String: String]? = nil,
                stdin: Stream = .pipe, stdout: Stream = .pipe, stderr: Stream = .inherit) throws {
        guard let program = arguments.first else { throw SubprocessError(command: "", errno: EINVAL) }
        var parentEnds: [Socket?] = [nil, nil, nil]
        var childFDs: [Int32] = [-1, -1, -1]
        var nullFD: Int32 = -1
        defer {
            for fd in childFDs where fd >= 0 { close(fd) }
            if nullFD >= 0 { close(nullFD) }
        }
        for (i, stream) in [stdin, stdout, stderr].enumerated() {
            switch stream {
            case .inherit:
                break
            case .null:
                if nullFD < 0 { nullFD = open("/dev/null", O_RDWR | O_CLOEXEC) }
                childFDs[i] = dup(nullFD)
            case .pipe:
                var pair: [Int32] = [-1, -1]
                guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                    throw SubprocessError(command: program, errno: errno)
                }
                parentEnds[i] = Socket(adopting: pair[0], family: AF_UNIX, type: .stream)
                childFDs[i] = pair[1]
            }
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for i in 0..<3 where childFDs[i] >= 0 {
            posix_spawn_file_actions_adddup2(&actions, childFDs[i], Int32(i))
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child starts with default signal handling and no blocked
        // signals, whatever this process set up.
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let envStrings = environment.map { $0.map { "\($0.key)=\($0.value)" } }
        let envp: [UnsafeMutablePointer<CChar>?]? = envStrings.map { $0.map { strdup($0) } + [nil] }
        defer { envp?.forEach { free($0) } }

        var child = pid_t()
        let rc: Int32
        if let envp {
            rc = posix_spawnp(&child, program, &actions, &attributes, argv, envp)
        } else {
            rc = posix_spawnp(&child, program, &actions, &attributes, argv, environ)
        }
        guard rc == 0 else {
            for s in parentEnds { s?.close() }
            throw SubprocessError(command: program, errno: rc)
        }
        pid = child
        self.stdin = parentEnds[0]
        self.stdout = parentEnds[1]
        self.stderr = parentEnds[2]
        pidfd = green_pidfd_open(child)
        if pidfd >= 0 { _ = fcntl(pidfd, F_SETFD, FD_CLOEXEC) }
    }

    deinit {
        stdin?.close()
        stdout?.close()
        stderr?.close()
        if pidfd >= 0 { close(pidfd) }
        guard status == nil else { return }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid { return }
        // Still running: reap it off the hub whenever it ends.
        let pid = self.pid
        ThreadPool.shared.submit {
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        }
    }

    /// Sends `signal` to the child (SIGTERM by default). Does nothing once
    /// it has been reaped. Never blocks: `wait` for it to end.
    public func kill(_ signal: Int32 = SIGTERM) {
        guard status == nil else { return }
        _ = Glibc.kill(pid, signal)
    }

    /// Waits for the child to exit, at most `timeout` seconds; returns its
    /// status, or nil on timeout. Blocks only the calling greenlet. Throws
    /// `SubprocessError` if `waitpid` fails, or the interrupt when the
    /// greenlet is killed or an enclosing timeout expires.
    @discardableResult
    public func wait(timeout: Double? = nil) throws -> Status? {
        if let status { return status }
        let reap = { () throws -> Status in
            var backoff = 0.001
            while true {
                if let s = try self.reapNow() { return s }
                if self.pidfd >= 0 {
                    try waitReadable(fd: self.pidfd)
                } else {
                    try Green.sleep(backoff)
                    backoff = min(backoff * 2, 0.05)
                }
            }
        }
        guard let timeout else { return try reap() }
        var result: Status?
        _ = try Hub.current.withDeadline(timeout) { result = try reap() }
        return result
    }

    private func reapNow() throws -> Status? {
        var raw: Int32 = 0
        let rc = waitpid(pid, &raw, WNOHANG)
        if rc == 0 { return nil }
        if rc < 0 {
            if errno == EINTR { return nil }
            throw SubprocessError(command: "waitpid \(pid)", errno: errno)
        }
        let s: Status = (raw & 0x7f) == 0 ? .exited((raw >> 8) & 0xff) : .signaled(raw & 0x7f)
        status = s
        if pidfd >= 0 {
            close(pidfd)
            pidfd = -1
        }
        return s
    }

    /// Writes `input` to the child's stdin (then closes it), reads its
    /// stdout and stderr to the end, concurrently, and waits for it to
    /// exit. Returns what it wrote. Streams that are not piped give [].
    /// Blocks only the calling greenlet (helpers on its hub write stdin
    /// and read stderr). Throws `SocketError` if a pipe fails (a child
    /// that exits without reading all of `input`, say),
    /// `SubprocessError`, or the interrupt when the greenlet is killed or
    /// an enclosing timeout expires.
    public func communicate(input: [UInt8] = []) throws -> (stdout: [UInt8], stderr: [UInt8]) {
        func drain(_ s: Socket?) throws -> [UInt8] {
            guard let s else { return [] }
            var all: [UInt8] = []
            while true {
                let chunk = try s.recv()
                if chunk.isEmpty { return all }
                all += chunk
            }
        }
        return try withScope { scope in
            if let stdin {
                scope.spawn {
                    defer { stdin.close() }
                    if !input.isEmpty { try stdin.sendAll(input) }
                }
            }
            let err = scope.spawn { try drain(self.stderr) }
            let out = try drain(stdout)
            let errBytes = try err.get()
            try wait()
            return (out, errBytes)
        }
    }
}

/// A child process that could not be started (or waited for).
public struct SubprocessError: Error, CustomStringConvertible {
    /// The program, or the call that failed ("waitpid 1234").
    public let command: String
    /// The system's error number.
    public let errno: Int32
    /// The command and the system's explanation.
    public var description: String { "cannot run \(command): \(String(cString: strerror(errno))) (errno \(errno))" }
}
