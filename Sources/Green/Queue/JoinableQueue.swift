/// A `Queue` that counts unfinished tasks, like gevent's and Python's
/// `JoinableQueue`: every item put is a task; a consumer calls `taskDone()`
/// when it has finished one, and `join()` waits until every task put so
/// far is done. `join()` blocks only the calling greenlet. Confined to the
/// hub's thread, as every `Queue`.
///
/// ```swift
/// let work = JoinableQueue<Job>()
/// for _ in 0..<4 { spawn { for job in work { process(job); try work.taskDone() } } }
/// for job in jobs { try work.put(job) }
/// try work.join()      // every job processed
/// ```
public final class JoinableQueue<T>: Queue<T> {
    /// Tasks put and not yet marked done.
    @exclusivity(unchecked) public private(set) var unfinishedTasks = 0
    private let joiners = WaitList()

    /// An empty queue holding at most `maxSize` items (unbounded if nil),
    /// with no task unfinished.
    public override init(maxSize: Int? = nil) {
        super.init(maxSize: maxSize)
    }

    override func didPut() { unfinishedTasks += 1 }
    override var typeName: String { "JoinableQueue" }

    /// Marks one task done. When none is left, every greenlet in `join`
    /// wakes. Throws `JoinableQueue.TooManyTaskDone` if called more often
    /// than items were put.
    public func taskDone() throws {
        guard unfinishedTasks > 0 else { throw TooManyTaskDone() }
        unfinishedTasks -= 1
        if unfinishedTasks == 0 { joiners.grantAll() }
    }

    /// Waits until every task put so far is done, at most `timeout`
    /// seconds; returns whether they were. Throws if the caller is killed
    /// or an enclosing timeout expires.
    @discardableResult
    public func join(timeout: Double? = nil) throws -> Bool {
        if unfinishedTasks == 0 { return true }
        return try Hub.wait(in: joiners, on: "JoinableQueue.join", timeout: timeout) == .granted
    }

    /// `taskDone()` called more times than items were put.
    public struct TooManyTaskDone: Error, CustomStringConvertible {
        /// What was misused, in a sentence.
        public var description: String { "JoinableQueue.taskDone() called more times than items were put" }
    }
}
