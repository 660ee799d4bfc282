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

    public init(default value: @autoclosure @escaping () -> T) {
        makeDefault = value
    }

    /// The calling greenlet's value.
    public var value: T {
        get {
            let g = Hub.current.current!
            if let v = g.locals?[ObjectIdentifier(self)] { return v as! T }
            return makeDefault()
        }
        set {
            let g: AnyGreenlet = Hub.current.current
            if g.locals == nil { g.locals = [:] }
            g.locals![ObjectIdentifier(self)] = newValue
        }
    }

    /// Forgets the calling greenlet's value; it sees the default again.
    public func reset() {
        Hub.current.current!.locals?[ObjectIdentifier(self)] = nil
    }
}
