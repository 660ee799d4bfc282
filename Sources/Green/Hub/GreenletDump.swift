import CGreenContext
import CLibev
import Glibc

/// What every greenlet of every hub is doing and where it stands, like
/// Go's SIGQUIT dump and goroutine profile: greenlets with the same state,
/// wait and frames of user code are one entry with a count and the range
/// of their wait times, named by the first frame of user code (file and
/// line where the binary has debug information); the full list, each
/// greenlet with its backtrace, on request. Compact greenlets are unwound
/// from their saved images.
///
/// ```swift
/// print(try GreenletDump.text())                 // grouped, from a greenlet
/// print(try GreenletDump.text(full: true))       // every greenlet, every frame
/// let json = try GreenletDump.json()             // for tools
/// let handler = GreenletDump.installSignalHandler()   // kill -QUIT <pid> prints it
/// ```
///
/// Each hub describes its greenlets on its own thread (asked through its
/// mailbox), so a parked stack is read while nothing can run on it; a hub
/// that does not answer within `timeout` is blocked, and is listed as such
/// (the blocked-hub monitor names the culprit). Symbols are looked up
/// once per distinct stack, on a thread of `ThreadPool.shared`. Nothing of this costs a switch anything:
/// the switch already leaves every register an unwinder needs on the
/// greenlet's stack.
///
/// Where the process cannot be asked (it no longer answers, or all there
/// is is a core file), gdb shows the same from outside:
/// `source Tools/gdb/green.py`, then `green-list` and `green-bt ID`.
public enum GreenletDump {
    /// Takes a snapshot of every hub's greenlets. Waits cooperatively for
    /// the other hubs' answers (at most `timeout` seconds each), blocking
    /// only the calling greenlet; throws the interrupt when it is killed
    /// or an enclosing timeout expires. Any thread (a plain thread gets a
    /// hub).
    /// Source lines are looked up for every frame when `full`, else for
    /// the frames a grouped dump shows.
    public static func snapshot(full: Bool = false, timeout: Double = 0.5) throws -> Snapshot {
        let here = Hub.current
        var greenlets: [Snapshot.Captured] = []
        var silent: [Snapshot.SilentHub] = []
        for (id, entry) in HubRegistry.all {
            if entry.mailbox === here.mailbox {
                greenlets += here.captureGreenlets(hubID: id)
                continue
            }
            let answer = AsyncResult<[Snapshot.Captured]>()
            let posted = entry.mailbox.post { _ = answer.set(Hub.current.captureGreenlets(hubID: id)) }
            if !posted {
                continue   // the hub's thread has ended
            } else if try answer.wait(timeout: timeout), let captured = try? answer.get() {
                greenlets += captured
            } else {
                silent.append(Snapshot.SilentHub(hub: id, thread: entry.thread, timeout: timeout))
            }
        }
        // Symbols are looked up on a pool thread (reading debug
        // information takes a while the first time): the hub goes on.
        let (captured, silentHubs) = (greenlets, silent)
        return try ThreadPool.shared.run { Snapshot(captured: captured, silentHubs: silentHubs, full: full) }
    }

    /// The dump as text: grouped (see `Snapshot.groupedText()`), or every
    /// greenlet with its whole backtrace when `full`. Blocks and throws as
    /// `snapshot(timeout:)` does.
    public static func text(full: Bool = false, timeout: Double = 0.5) throws -> String {
        let s = try snapshot(full: full, timeout: timeout)
        return full ? s.fullText() : s.groupedText()
    }

    /// The dump as JSON (see `Snapshot.json(full:)`). Blocks and throws as
    /// `snapshot(timeout:)` does.
    public static func json(full: Bool = false, timeout: Double = 0.5) throws -> String {
        try snapshot(full: full, timeout: timeout).json(full: full)
    }

    /// Prints the grouped dump to standard error (or hands it to `write`)
    /// whenever `signal` arrives (SIGQUIT by default: `kill -QUIT <pid>`,
    /// or Ctrl-\ on a terminal). The handler is a greenlet on the calling
    /// thread's hub; cancel the returned handler to stop.
    @discardableResult
    public static func installSignalHandler(_ signal: Int32 = SIGQUIT, full: Bool = false,
                                            write: @escaping (String) -> Void = { text in
                                                var bytes = Array(text.utf8)
                                                _ = Glibc.write(2, &bytes, bytes.count)
                                            }) -> SignalHandler {
        SignalHandler(signal) { write(try GreenletDump.text(full: full)) }
    }
}

extension Hub {
    /// This hub's greenlets with their backtraces: the main greenlet
    /// first, then spawned ones, newest first. On the hub's thread; the
    /// greenlets captured stay suspended meanwhile (nothing here yields).
    func captureGreenlets(hubID: Int) -> [GreenletDump.Snapshot.Captured] {
        let now = self.now
        var names: [UInt64: String] = [mainGreenlet.id: mainGreenlet.name]
        forEachLive { names[$0.id] = $0.name }
        let running: AnyGreenlet = current
        let ownStack = GreenletBacktrace.threadStackBounds()
        func capture(_ g: AnyGreenlet) -> GreenletDump.Snapshot.Captured {
            var frames: FrameAddresses = []
            if g === running {
                let stack = ctxStack(g.context) ?? ownStack
                frames = GreenletBacktrace.ofCaller(stack: stack)
            } else if g.state != .pending && g.state != .finished, let ctx = g.context {
                frames = GreenletBacktrace.ofSuspended(ctx, ownStack: ownStack)
            }
            let state: String
            switch g.state {
            case .pending: state = "not started"
            case .ready: state = "ready"
            case .running: state = "running"
            case .finished: state = "finished"
            case .parked: state = "parked"
            }
            return GreenletDump.Snapshot.Captured(
                hub: hubID, id: g.id, name: g.name, isCompact: g.isCompact, state: state,
                waitingOn: g.state == .parked ? "\(g.waitingOn)" : nil,
                waitMilliseconds: g.state == .parked ? Int(((now - g.parkedSince) * 1000).rounded()) : nil,
                spawnedBy: g.parentID == 0 ? nil : names[g.parentID] ?? "Greenlet-\(g.parentID) (finished)",
                frames: frames)
        }
        func ctxStack(_ ctx: UnsafeMutablePointer<green_context>?) -> (UInt, UInt)? {
            guard let ctx else { return nil }
            if let stack = ctx.pointee.stack {
                let base = UInt(bitPattern: stack.pointee.base)
                return (base, base + UInt(stack.pointee.size))
            }
            if let shared = ctx.pointee.shared {
                return (UInt(bitPattern: shared.pointee.stack.pointee.base), UInt(bitPattern: shared.pointee.top))
            }
            return nil
        }
        var out = [capture(mainGreenlet)]
        forEachLive { out.append(capture($0)) }
        return out
    }
}
