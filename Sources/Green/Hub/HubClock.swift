// The hub's clock: libev's, plus what virtual time skipped (VirtualTime.swift).
import CLibev

extension Hub {
    /// The loop's notion of now, as of the last poll or `updateNow()`:
    /// seconds since the epoch (libev's `ev_now`), plus whatever a virtual
    /// clock has skipped (see `withVirtualTime`). Deadlines for
    /// `sleep(until:)` are on this clock; libev keeps timers themselves on
    /// the monotonic clock, so a wall-clock step does not reorder them.
    public var now: Double {
        if let clock = virtualClock { return clock.now }
        return ev_now(loop) + timeOffset
    }

    /// Refreshes `now` from the clock.
    public func updateNow() { ev_now_update(loop) }

    /// Refreshes the loop's clock and returns it: `updateNow()`, then `now`.
    public func nowUpdated() -> Double {
        updateNow()
        return now
    }
}
