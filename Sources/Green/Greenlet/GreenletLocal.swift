import Synchronization

/// A value that each greenlet sees separately, like gevent's `local`.
/// A greenlet that has not set it sees the default. Values set by a
/// greenlet are released when it finishes. Children do not inherit.
///
/// ```swift
/// let requestID = GreenletLocal<Int>(default: 0)
/// requestID.value = 42     // only for the calling greenlet
/// ```
public final class GreenletLocal<T> {
    private let makeDefault: () -> T
    /// Process-unique, never reused: a value stored under a released local
    /// must not show through a later one allocated at the same address.
    private let key: UInt64

    /// A local whose default, `value`, is evaluated each time a greenlet
    /// that has not set it reads it.
    public init(default value: @autoclosure @escaping () -> T) {
        makeDefault = value
        key = GreenletLocalKeys.next.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// The calling greenlet's value.
    public var value: T {
        get {
            let g = Hub.current.current!
            if let v = g.locals?[key] { return v as! T }
            return makeDefault()
        }
        set {
            let g: AnyGreenlet = Hub.current.current
            let x = g.madeExtras
            if x.locals == nil { x.locals = [:] }
            x.locals![key] = newValue
        }
    }

    /// Forgets the calling greenlet's value; it sees the default again.
    public func reset() {
        Hub.current.current!.extras?.locals?[key] = nil
    }
}

/// Keys of `GreenletLocal`s (a generic class cannot hold a static).
enum GreenletLocalKeys {
    static let next = Atomic<UInt64>(1)
}
