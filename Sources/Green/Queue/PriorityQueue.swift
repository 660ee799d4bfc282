import HeapModule

/// A `Queue` that hands out the smallest item first, like gevent's
/// `PriorityQueue` (Python's `heapq` order). Equal items come out in the
/// order they were put. Everything else (bounds, waiting, close, the hub's
/// thread only) is as for `Queue`.
///
/// ```swift
/// let jobs = PriorityQueue<Job>()    // Job: Comparable by priority
/// ```
public final class PriorityQueue<T: Comparable>: Queue<T> {
    private struct Entry: Comparable {
        let item: T
        /// Put order, so that equal items keep it.
        let sequence: UInt64

        static func < (a: Entry, b: Entry) -> Bool {
            a.item < b.item || (!(b.item < a.item) && a.sequence < b.sequence)
        }

        static func == (a: Entry, b: Entry) -> Bool {
            a.sequence == b.sequence
        }
    }

    @exclusivity(unchecked) private var heap = Heap<Entry>()
    @exclusivity(unchecked) private var nextSequence: UInt64 = 0

    /// An empty queue holding at most `maxSize` items (unbounded if nil).
    public override init(maxSize: Int? = nil) {
        super.init(maxSize: maxSize)
    }

    override func store(_ item: T) {
        heap.insert(Entry(item: item, sequence: nextSequence))
        nextSequence &+= 1
    }

    override func takeStored() -> T { heap.removeMin().item }
    override func peekStored() -> T? { heap.min?.item }
    override var storedCount: Int { heap.count }
    override var typeName: String { "PriorityQueue" }
}
