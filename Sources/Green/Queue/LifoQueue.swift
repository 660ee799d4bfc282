/// A `Queue` that hands out the most recently put item first (a stack),
/// like gevent's `LifoQueue`. Everything else (bounds, waiting, close) is
/// as for `Queue`.
public final class LifoQueue<T>: Queue<T> {
    public override init(maxSize: Int? = nil) {
        super.init(maxSize: maxSize)
    }

    override func takeStored() -> T { items.removeLast() }
    override func peekStored() -> T? { items.last }
    override var typeName: String { "LifoQueue" }
}
