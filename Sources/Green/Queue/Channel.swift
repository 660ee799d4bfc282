/// A rendezvous between greenlets, like gevent's `Channel` and Go's
/// unbuffered channel: `put` waits until a getter takes the item, `get`
/// until a putter offers one; the item passes directly from one to the
/// other. A `Queue` with `maxSize` 0: timeouts, the non-waiting variants,
/// `close()` and `for item in channel` work as for `Queue`. Confined to
/// the hub's thread.
public final class Channel<T>: Queue<T> {
    /// An empty channel on the calling thread's hub.
    public init() {
        super.init(maxSize: 0)
    }

    override var typeName: String { "Channel" }
}
