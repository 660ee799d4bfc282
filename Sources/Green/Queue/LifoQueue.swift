/// A `Queue` that hands out the most recently put item first (a stack),
/// like gevent's `LifoQueue`. Everything else (bounds, waiting, close, the
/// hub's thread only) is as for `Queue`.
public final class LifoQueue<T>: Queue<T> {
    /// An empty stack holding at most `maxSize` items (unbounded if nil).
    public override init(maxSize: Int? = nil) {
        super.init(maxSize: maxSize)
    }

    override func takeStored() -> T { items.removeLast() }
    override func peekStored() -> T? { items.last }
    override var typeName: String { "LifoQueue" }
}
