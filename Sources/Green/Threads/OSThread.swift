import Glibc

/// Starting plain OS threads without Foundation: the pool's workers, hub
/// threads, and the adapter layer's threads.
public enum OSThread {
    /// Starts `body` on a new thread with a stack of `stackSize` bytes (0:
    /// the system's default), detached or joinable. Returns the thread, or
    /// the errno of pthread_create (EAGAIN: out of threads or of memory for
    /// stacks); nothing runs then.
    public static func create(stackSize: Int = 0, detached: Bool,
                              _ body: @escaping @Sendable () -> Void) -> Result<pthread_t, OSThreadError> {
        // Retained across pthread_create: the new thread takes the retain.
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        if stackSize > 0 { pthread_attr_setstacksize(&attributes, stackSize) }
        let rc = pthread_create(&thread, &attributes, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            return .failure(OSThreadError(errno: rc))
        }
        return .success(thread)
    }

    /// Runs `body` on a new detached thread. Returns false (and runs
    /// nothing) if the thread could not be created.
    @discardableResult
    static func start(stackSize: Int = 0, _ body: @escaping @Sendable () -> Void) -> Bool {
        if case .success = create(stackSize: stackSize, detached: true, body) { return true }
        return false
    }
}

/// pthread_create failed: usually EAGAIN, the system's limit on threads
/// (or on memory for their stacks) reached.
public struct OSThreadError: Error, CustomStringConvertible {
    /// What pthread_create returned.
    public let errno: Int32

    /// The error for pthread_create's `errno`.
    public init(errno: Int32) { self.errno = errno }

    /// The system's explanation, and for EAGAIN the limits to look at.
    public var description: String {
        "cannot start a thread: pthread_create: \(String(cString: strerror(errno))) (errno \(errno))"
            + (errno == EAGAIN ? "; the system's limit on threads (ulimit -u, kernel.threads-max) or on memory for their stacks is reached" : "")
    }
}
