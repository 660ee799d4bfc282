import Glibc

/// Thrown into a greenlet by `kill()` with no explicit error. A greenlet
/// that ends with it counts as killed, not failed: it is never reported.
public struct GreenletExit: Error, CustomStringConvertible {
    /// The error `kill()` throws by default.
    public init() {}
    /// "GreenletExit".
    public var description: String { "GreenletExit" }
}

/// Errors of the runtime itself.
public enum GreenError: Error, CustomStringConvertible {
    /// Every greenlet on the hub is blocked and nothing (timer, fd, other
    /// thread, signal) can wake any of them: the blocked call would never
    /// return. Thrown into the thread's main greenlet. gevent calls this
    /// `LoopExit`.
    /// `parked` names the other greenlets blocked on the hub and what
    /// each waits on.
    case wouldBlockForever(waitingOn: String, parked: [String])
    /// A greenlet tried to join itself.
    case joinSelf(String)
    /// No stack could be set up for a new greenlet (memory or mapping
    /// limit); the greenlet fails with this error and never runs.
    case stackAllocationFailed(greenlet: String, stackSize: Int, errno: Int32)
    /// The hub's event loop could not be created.
    case loopCreationFailed
    /// Work was sent to a hub whose thread has exited.
    case hubGone
    /// `Hub.advanceVirtualTime(by:)` on a hub whose clock is real.
    case notVirtualTime
    /// The system refused to create an OS thread.
    case threadStartFailed
    /// A blocking call (named) was made on the hub itself: in an async job
    /// its executor runs (`HubExecutor`), or in a loop callback. Jobs run
    /// between greenlets and must not block; block in a greenlet instead
    /// (spawn one, or `HubHandle.run` from async code).
    case blockingCallOnHub(String)

    /// What happened and, where it helps, what to do instead.
    public var description: String {
        switch self {
        case .blockingCallOnHub(let what):
            return "a blocking call (\(what)) ran on the hub itself, in an async job of its executor or a loop callback: "
                + "jobs run between greenlets and must not block; call blocking green APIs from a greenlet "
                + "(spawn one, or use HubHandle.run)"
        case .wouldBlockForever(let what, let parked):
            var text = "this greenlet is blocked in \(what) and nothing can ever wake it: "
                + "no ready greenlet, no active timer, fd watcher or cross-thread wake-up"
            if parked.isEmpty {
                text += "; no other greenlet is parked on this hub"
            } else {
                let shown = parked.prefix(8).joined(separator: ", ")
                let more = parked.count > 8 ? ", and \(parked.count - 8) more" : ""
                text += "; \(parked.count) other greenlet(s) parked on this hub: \(shown)\(more)"
            }
            return text
        case .joinSelf(let name):
            return "greenlet \(name) tried to join itself"
        case .stackAllocationFailed(let name, let size, let err):
            return "could not allocate a \(size)-byte stack for greenlet \(name) (errno \(err))"
        case .loopCreationFailed:
            return "could not create the hub's libev loop"
        case .notVirtualTime:
            return "the hub's clock is real: advanceVirtualTime(by:) needs withVirtualTime"
        case .hubGone:
            return "the hub's thread has exited; nothing runs there any more"
        case .threadStartFailed:
            return "could not start an OS thread (pthread_create failed)"
        }
    }
}
