import CGreenPatch
import Glibc
import Green
import Logging

/// Patch mode (opt-in): inside a spawned greenlet, blocking libc calls
/// made from C (or any code in this program, or in a shared library it
/// loads, that calls libc's) park the greenlet instead of the thread, so
/// other greenlets run meanwhile: the analogue of
/// `gevent.monkey.patch_all()`. Outside greenlets, and when patch mode is
/// off, the calls are libc's.
///
/// Covered: the sleeps (`sleep`, `usleep`, `nanosleep`, `clock_nanosleep`);
/// the waits on fds (`poll`, `ppoll`, `select`, `pselect`, `epoll_wait`,
/// `epoll_pwait`, `epoll_pwait2`), whose answers are libc's own; on sockets
/// in blocking mode `read`, `write`, `readv`, `writev`, `recv`, `send`,
/// `recvfrom`, `sendto`, `recvmsg`, `sendmsg`, `connect`, `accept` and
/// `accept4` (other fds, and sockets the program made non-blocking, get
/// libc's call); the `_FORTIFY_SOURCE` entry points `__read_chk`,
/// `__recv_chk`, `__recvfrom_chk`, `__poll_chk`, `__ppoll_chk`; and
/// `getaddrinfo` (run on a pool thread). A wait with a signal mask is
/// libc's call (the mask cannot apply to a cooperative wait only). A kill
/// or an expiring timeout ends the call as a signal would (EINTR) and is
/// thrown at the greenlet's next cooperative call. The README's "Patch
/// mode" lists exactly what is and is not covered.
///
/// The functions are defined in this program and exported (`functions`,
/// `unexported`): the linker exports a definition that a linked shared
/// library (here libc) also defines.
public enum PatchMode {
    // `nonisolated(unsafe)` (a pointer is not Sendable): allocated and
    // written once, by the lazy initializer (run once, thread-safely),
    // never freed, and from then on only read, by C, from any thread.
    nonisolated(unsafe) private static let hooks: UnsafeMutablePointer<green_patch_hooks> = {
        let p = UnsafeMutablePointer<green_patch_hooks>.allocate(capacity: 1)
        p.initialize(to: green_patch_hooks(
            in_greenlet: { Hub.isInSpawnedGreenlet ? 1 : 0 },
            sleep_for: { seconds in
                do {
                    try Green.sleep(seconds)
                    return 0
                } catch {
                    // The interrupt (kill, timeout) is re-armed for the
                    // greenlet's next cooperative call.
                    Hub.rearmInterrupt()
                    return -1
                }
            },
            wait_fd: { fd, writable in
                do {
                    _ = writable != 0 ? try waitWritable(fd: fd) : try waitReadable(fd: fd)
                    return 0
                } catch {
                    Hub.rearmInterrupt()
                    return -1
                }
            },
            wait_any: { fds, events, count, timeout in
                var readable: [Int32] = []
                var writable: [Int32] = []
                for i in 0..<Int(count) {
                    if events![i] & 1 != 0 { readable.append(fds![i]) }
                    if events![i] & 2 != 0 { writable.append(fds![i]) }
                }
                do {
                    _ = try select(readable: readable, writable: writable, timeout: timeout < 0 ? nil : timeout)
                    return 0
                } catch {
                    Hub.rearmInterrupt()
                    return -1
                }
            },
            run_elsewhere: { work, arg in
                // `arg` is the caller's (on the heap: a compact greenlet's
                // stack is not there while it parks): wait for the work to
                // end whatever happens (a kill is re-armed).
                let job = UnsafeSendable(work: work!, arg: arg)
                let done = AsyncResult<Bool>()
                ThreadPool.shared.submit {
                    job.work(job.arg)
                    _ = done.set(true)
                }
                do {
                    _ = try done.get()
                } catch {
                    Hub.rearmInterrupt()
                    _ = try? shielded { try done.get() }
                }
            }))
        return p
    }()

    /// Turns patch mode on (process-wide). When the program uses
    /// swift-log (see `GreenDiagnostics`), says so as a `notice` of the
    /// `swift-green` logger, and warns of the functions a shared library
    /// would still get from libc (`unexported`); by default it prints
    /// nothing.
    public static func enable() {
        green_patch_set_hooks(hooks)
        guard GreenDiagnostics.isLogging else { return }
        GreenDiagnostics.notice("patch mode on: blocking libc calls in greenlets cooperate",
                                metadata: ["functions": "\(definitions.count)"])
        let missing = unexported
        if !missing.isEmpty {
            GreenDiagnostics.warning("patch mode: these functions do not resolve to patch mode's definitions; a shared library calling them gets libc's",
                                     metadata: ["functions": .array(missing.map { .string($0) })])
        }
    }

    /// Turns it off: the calls are libc's again (a `notice` too).
    public static func disable() {
        green_patch_set_hooks(nil)
        GreenDiagnostics.notice("patch mode off", metadata: [:])
    }

    /// Calls that cooperated since the program started.
    public static var cooperativeCalls: UInt { UInt(green_patch_cooperative_calls()) }

    /// The libc functions patch mode defines, each with this program's
    /// definition.
    private static var definitions: [(name: String, address: UnsafeMutableRawPointer?)] {
        var all: [(String, UnsafeMutableRawPointer?)] = []
        var address: UnsafeMutableRawPointer?
        var index: UInt32 = 0
        while let name = green_patch_interposer(index, &address) {
            all.append((String(cString: name), address))
            index += 1
        }
        return all
    }

    /// The names of the libc functions patch mode defines.
    public static var functions: [String] { definitions.map(\.name) }

    /// Those of `functions` whose name does not resolve, among the
    /// program's dynamic symbols, to patch mode's definition: a shared
    /// library calling one (loaded at start or later with `dlopen`) would
    /// get libc's. Empty when the link exported them all, as it does when
    /// libc is a shared library (see the README).
    public static var unexported: [String] {
        definitions.filter { dlsym(nil, $0.name) != $0.address }.map(\.name)
    }
}

/// A C function and its argument, handed to a pool thread while the
/// greenlet that owns the argument waits for it. `@unchecked Sendable`:
/// `arg` is the caller's heap memory, and `run_elsewhere` does not return
/// (even when interrupted: it waits on, shielded) until the pool thread's
/// call has ended, so one thread at a time uses it.
private struct UnsafeSendable: @unchecked Sendable {
    let work: @convention(c) (UnsafeMutableRawPointer?) -> Void
    let arg: UnsafeMutableRawPointer?
}
