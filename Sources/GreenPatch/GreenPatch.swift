import CGreenPatch
import Green

/// Patch mode (opt-in): inside a spawned greenlet, `sleep`, `usleep` and
/// `nanosleep` called from C (or any code in this program that calls
/// libc's) park the greenlet instead of the thread, so other greenlets run
/// meanwhile: the analogue of `gevent.monkey.patch_all()` for these calls.
/// Outside greenlets, and when patch mode is off, the calls are libc's.
///
/// Covered: the sleep family; `read`, `write`, `recv`, `send`, `connect`,
/// `accept` and `accept4` on sockets in blocking mode (other fds, and
/// sockets the program made non-blocking, get libc's call); `poll`; and
/// `getaddrinfo` (run on a pool thread). The interposed symbols are
/// defined in the executable; the linker also exports those that a linked
/// shared library uses (Foundation uses them all), so that library's calls
/// land here too: `FileHandle` reading a socket cooperates. Not yet:
/// `select`/`epoll`, and a symbol no linked library uses (an LD_PRELOAD
/// build of the same interposers would cover it).
public enum PatchMode {
    // Written once, then only read (by C, from any thread).
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
                // The pointers live on this greenlet's stack: wait for the
                // work to end whatever happens (a kill is re-armed).
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

    /// Turns patch mode on (process-wide).
    public static func enable() { green_patch_set_hooks(hooks) }

    /// Turns it off: the calls are libc's again.
    public static func disable() { green_patch_set_hooks(nil) }

    /// Calls that cooperated since the program started.
    public static var cooperativeCalls: UInt { UInt(green_patch_cooperative_calls()) }
}

/// A C function and its argument, handed to a pool thread while the
/// greenlet that owns the argument waits for it.
private struct UnsafeSendable: @unchecked Sendable {
    let work: @convention(c) (UnsafeMutableRawPointer?) -> Void
    let arg: UnsafeMutableRawPointer?
}
