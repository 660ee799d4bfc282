// Virtual time, for tests (ours and users'): the idea of Go's
// testing/synctest and of SwiftNIO's embedded event loop, on a real hub.
//
// While `withVirtualTime` runs, the hub's timers (sleeps, timeouts,
// `spawn(after:)`, and every deadline built on them: socket and queue
// timeouts, retry backoffs) are kept here instead of in libev. When the
// hub has nothing to run and no greenlet waits on the world outside it (an
// fd, another thread, a signal handler), the clock jumps to the next timer
// and fires it: a one-hour timeout takes no time, and timers fire in
// exactly the order of their deadlines. While something does wait on the
// outside, time runs at the real pace (the outside cannot be told to
// hurry), and the timers still fire when their deadlines come: the loop
// sleeps in libev until the earliest of them, or until the fd, the thread
// or the signal wakes it.
//
// The virtual clock's time is its own: it stands still while code runs,
// moves by jumps (and by `advanceVirtualTime`), and by the real time the
// loop spends waiting in libev (for the outside, or for a timer's
// deadline while the outside is awaited). So timers fire at exactly their
// deadlines. When the virtual clock ends, its timers still pending become
// libev timers for the time they had left, and `timeOffset` (which never
// goes back) keeps `Hub.now` from going back.
//
// Costs nothing when off: the timer calls test one optional, the loop
// tests it only when it is about to wait.
//
// Unsafe parts: the clock keeps the timers it holds by address. They
// belong to their waiters (invariant 4 in Hub.swift): every one is taken
// off here by `stopTimer` before its memory goes, so an address in `live`
// is always a live timer; entries in `heap` that `live` no longer names
// are skipped, never dereferenced. Hub thread only.
import CLibev
import HeapModule

/// A hub's virtual clock: its timers, by deadline. Hub thread only.
final class VirtualClock {
    /// The hub's time while the clock is virtual.
    var now: Double

    struct Entry: Comparable {
        let deadline: Double
        /// Start order: timers with one deadline fire in the order started.
        let sequence: UInt64
        let timer: UnsafeMutablePointer<ev_timer>

        static func < (a: Entry, b: Entry) -> Bool {
            (a.deadline, a.sequence) < (b.deadline, b.sequence)
        }

        static func == (a: Entry, b: Entry) -> Bool { a.sequence == b.sequence }
    }

    /// Entries by deadline; one whose timer was stopped or restarted since
    /// stays until it comes up and is skipped (`live` no longer names it).
    var heap = Heap<Entry>()
    /// Each pending timer's live entry.
    var live: [UnsafeMutablePointer<ev_timer>: UInt64] = [:]
    var nextSequence: UInt64 = 0
    /// Nested `withVirtualTime` calls.
    var depth = 1
    /// A libev timer at the earliest deadline, so that the loop wakes for
    /// it while greenlets wait on the outside.
    let wakeUp: UnsafeMutablePointer<ev_timer>

    init(now: Double) {
        self.now = now
        wakeUp = .allocate(capacity: 1)
        wakeUp.initialize(to: ev_timer())
        // Firing is done by the loop after ev_run returns.
        green_ev_timer_init(wakeUp, { _, _, _ in }, 0, 0)
    }

    deinit { wakeUp.deallocate() }

    func start(_ timer: UnsafeMutablePointer<ev_timer>, at deadline: Double) {
        nextSequence += 1
        live[timer] = nextSequence
        heap.insert(Entry(deadline: deadline, sequence: nextSequence, timer: timer))
    }

    /// Removes `timer`; returns whether it was pending here.
    func stop(_ timer: UnsafeMutablePointer<ev_timer>) -> Bool {
        live.removeValue(forKey: timer) != nil
    }

    /// The earliest pending deadline, dropping stale entries on the way.
    func earliest() -> Double? {
        while let top = heap.min {
            if live[top.timer] == top.sequence { return top.deadline }
            heap.removeMin()
        }
        return nil
    }

    /// Takes the earliest pending timer if it is due at `now`.
    func popDue(at now: Double) -> UnsafeMutablePointer<ev_timer>? {
        guard let deadline = earliest(), deadline <= now else { return nil }
        let entry = heap.removeMin()
        live[entry.timer] = nil
        return entry.timer
    }
}

extension Hub {
    // MARK: - Timers, on either clock

    /// Starts `timer` (initialized with its callback and this delay) to
    /// fire after `seconds`: in libev, or on the virtual clock.
    @inline(__always)
    func startTimer(_ timer: UnsafeMutablePointer<ev_timer>, after seconds: Double) {
        if let clock = virtualClock {
            clock.start(timer, at: clock.now + max(0, seconds))
        } else {
            ev_timer_start(loop, timer)
        }
    }

    /// Stops `timer`, wherever it runs; nothing if it is not running.
    @inline(__always)
    func stopTimer(_ timer: UnsafeMutablePointer<ev_timer>) {
        if let clock = virtualClock, clock.stop(timer) { return }
        ev_timer_stop(loop, timer)
    }

    /// Whether `timer` has been started and has not fired or been stopped.
    @inline(__always)
    func isTimerPending(_ timer: UnsafeMutablePointer<ev_timer>) -> Bool {
        if green_ev_is_active(timer) != 0 { return true }
        guard let clock = virtualClock else { return false }
        return clock.live[timer] != nil
    }

    // MARK: - The loop's part

    /// Nothing to run: if nothing waits on the outside either, jumps the
    /// virtual clock to its next timer and fires every timer then due.
    /// Returns whether it did. Hub greenlet only.
    func jumpVirtualClock() -> Bool {
        guard let clock = virtualClock, externalWaits == 0, let next = clock.earliest() else { return false }
        if next > clock.now { clock.now = next }
        fireDueVirtualTimers()
        return true
    }

    /// Before the loop waits in libev: a wake-up at the earliest virtual
    /// deadline (time runs at the real pace while something outside is
    /// awaited).
    func armVirtualWakeUp() {
        guard let clock = virtualClock else { return }
        ev_timer_stop(loop, clock.wakeUp)
        guard let next = clock.earliest() else { return }
        green_ev_timer_set(clock.wakeUp, max(0, next - clock.now), 0)
        ev_timer_start(loop, clock.wakeUp)
    }

    /// After the loop waited in libev (from `before`, libev's time): the
    /// virtual clock moves by the real time waited.
    func virtualClockWaited(since before: Double) {
        guard let clock = virtualClock else { return }
        clock.now += max(0, ev_now(loop) - before)
    }

    /// Fires, in deadline order, every virtual timer due by now.
    func fireDueVirtualTimers() {
        guard let clock = virtualClock else { return }
        while let timer = clock.popDue(at: clock.now) {
            ev_invoke(loop, timer, Int32(EV_TIMER))
        }
        loopTime = clock.now
    }

    // MARK: - Switching clocks

    /// Starts (or nests) virtual time on this hub. Hub thread only.
    func beginVirtualTime() {
        if let clock = virtualClock {
            clock.depth += 1
            return
        }
        ev_now_update(loop)
        virtualClock = VirtualClock(now: ev_now(loop) + timeOffset)
    }

    /// Ends one level of virtual time; at the last, the timers still
    /// pending go to libev with the time they had left.
    func endVirtualTime() {
        guard let clock = virtualClock else { return }
        clock.depth -= 1
        guard clock.depth == 0 else { return }
        ev_timer_stop(loop, clock.wakeUp)
        ev_now_update(loop)
        let current = clock.now
        // The real clock goes on from the virtual one's time, or later.
        timeOffset = max(timeOffset, current - ev_now(loop))
        var pending: [VirtualClock.Entry] = []
        while let top = clock.heap.popMin() {
            if clock.live[top.timer] == top.sequence { pending.append(top) }
        }
        virtualClock = nil
        for entry in pending {
            green_ev_timer_set(entry.timer, max(0, entry.deadline - current), 0)
            ev_timer_start(loop, entry.timer)
        }
    }

    /// Whether this hub's clock is virtual now (see `withVirtualTime`).
    public var isVirtualTime: Bool { virtualClock != nil }

    /// Moves a virtual clock forward by `seconds` at once, as if the
    /// thread had been busy that long: nothing runs meanwhile, and the
    /// timers then due fire when the hub next polls (when it has nothing
    /// to run, or after its budget of switches), as expired timers do on a
    /// real clock. For a test that must find deadlines in the past. Throws
    /// `GreenError.notVirtualTime` on a real clock.
    public func advanceVirtualTime(by seconds: Double) throws {
        guard let clock = virtualClock else { throw GreenError.notVirtualTime }
        guard seconds > 0 else { return }
        clock.now += seconds
    }
}

/// Runs `body` with the calling thread's hub on virtual time: its timers
/// (sleeps, timeouts, `spawn(after:)`, socket and queue deadlines) fire
/// in order of their deadlines, and whenever the hub has nothing to run
/// and no greenlet waits on the outside (an fd, another thread, a signal
/// handler), the clock jumps to the next deadline, so that a test of a
/// one-hour timeout or a retry backoff takes no time. While something
/// outside is awaited, time runs at the real pace.
///
/// ```swift
/// try withVirtualTime {
///     let start = Hub.current.now
///     XCTAssertThrowsError(try withTimeout(3600) { try event.wait() })
///     XCTAssertEqual(Hub.current.now - start, 3600, accuracy: 0.001)   // at once
/// }
/// ```
///
/// For the whole hub while it runs: timers that any of its greenlets
/// start meanwhile are virtual (those started before keep the real clock).
/// Nests; when the outermost call returns, timers still pending continue
/// on the real clock with the time they had left. `Hub.now` never goes
/// back.
public func withVirtualTime<R>(_ body: () throws -> R) rethrows -> R {
    let hub = Hub.current
    hub.beginVirtualTime()
    defer { hub.endVirtualTime() }
    return try body()
}
