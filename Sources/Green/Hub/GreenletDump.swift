import CLibev
import Glibc

/// What every greenlet of every hub is doing, like Go's SIGQUIT dump:
/// name, state, what it waits on and for how long, and who spawned it.
///
/// ```swift
/// print(try GreenletDump.text())                 // on demand, from a greenlet
/// let handler = GreenletDump.installSignalHandler()   // kill -QUIT <pid> prints it
/// ```
///
/// Each hub describes itself on its own thread (asked through its
/// mailbox); a hub that does not answer within `timeout` is blocked, and
/// is listed as such (the blocked-hub monitor names the culprit).
public enum GreenletDump {
    /// The dump of every hub. Waits cooperatively for the other hubs'
    /// answers (at most `timeout` seconds each), blocking only the calling
    /// greenlet; throws the interrupt when it is killed or an enclosing
    /// timeout expires. Any thread (a plain thread gets a hub).
    public static func text(timeout: Double = 0.5) throws -> String {
        let here = Hub.current
        var out = "swift-green: greenlet dump (\(HubRegistry.all.count) hubs)\n"
        for (id, entry) in HubRegistry.all {
            out += "hub \(id) (thread \(String(entry.thread, radix: 16))):\n"
            if entry.mailbox === here.mailbox {
                out += here.describeGreenlets()
                continue
            }
            let answer = AsyncResult<String>()
            let posted = entry.mailbox.post { _ = answer.set(Hub.current.describeGreenlets()) }
            if !posted {
                out += "  (gone)\n"
            } else if try answer.wait(timeout: timeout), let text = try? answer.get() {
                out += text
            } else {
                out += "  (no answer within \(timeout) s: the hub is blocked; see the monitor's report)\n"
            }
        }
        return out
    }

    /// Prints the dump to standard error (or hands it to `write`) whenever
    /// `signal` arrives (SIGQUIT by default: `kill -QUIT <pid>`, or Ctrl-\
    /// on a terminal). The handler is a greenlet on the calling thread's
    /// hub; cancel the returned handler to stop.
    @discardableResult
    public static func installSignalHandler(_ signal: Int32 = SIGQUIT,
                                            write: @escaping (String) -> Void = { text in
                                                var bytes = Array(text.utf8)
                                                _ = Glibc.write(2, &bytes, bytes.count)
                                            }) -> SignalHandler {
        SignalHandler(signal) { write(try GreenletDump.text()) }
    }
}

extension Hub {
    /// This hub's greenlets, one line each: the main greenlet first, then
    /// spawned ones, newest first. On the hub's thread.
    func describeGreenlets() -> String {
        let now = self.now
        var names: [UInt64: String] = [mainGreenlet.id: mainGreenlet.name]
        forEachLive { names[$0.id] = $0.name }
        func line(_ g: AnyGreenlet) -> String {
            var s = "  \(g.name): "
            switch g.state {
            case .pending: s += "not started"
            case .ready: s += "ready"
            case .running: s += "running"
            case .finished: s += "finished"
            case .parked:
                s += "parked on \(g.waitingOn)"
                s += " for \(Int(((now - g.parkedSince) * 1000).rounded())) ms"
            }
            if g.parentID != 0 {
                s += ", spawned by \(names[g.parentID] ?? "Greenlet-\(g.parentID) (finished)")"
            }
            return s + "\n"
        }
        var out = line(mainGreenlet)
        forEachLive { out += line($0) }
        return out
    }
}
