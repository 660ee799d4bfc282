import CLibev

/// Waits until at least one of the file descriptors is ready, at most
/// `timeout` seconds, like `select`/`poll` but blocking only the calling
/// greenlet. Returns the ready ones (both empty on timeout). Throws if the
/// greenlet is killed or an enclosing timeout expires.
///
/// ```swift
/// let (readable, _) = try select(readable: [a.fd, b.fd], timeout: 1)
/// ```
public func select(readable: [Int32] = [], writable: [Int32] = [],
                   timeout: Double? = nil) throws -> (readable: [Int32], writable: [Int32]) {
    let hub = Hub.current
    let g: AnyGreenlet = hub.current
    try hub.checkpoint(g)
    let all = readable.map { ($0, Int32(EV_READ)) } + writable.map { ($0, Int32(EV_WRITE)) }
    if all.isEmpty {
        if let timeout { try Green.sleep(timeout) } else { throw GreenError.wouldBlockForever(waitingOn: "select over no fd", parked: []) }
        return ([], [])
    }
    // One watcher per entry, and one flag per entry set by its callback:
    // on the heap (a compact greenlet's stack is away while it parks),
    // each watcher stopped before the memory is freed, and the greenlet
    // held unretained while it waits (invariants 2 and 4 in Hub.swift).
    struct Entry {
        var watcher = ev_io()
        var fired = false
        let greenlet: Unmanaged<AnyGreenlet>
    }
    let entries = UnsafeMutablePointer<Entry>.allocate(capacity: all.count)
    for (i, (fd, events)) in all.enumerated() {
        (entries + i).initialize(to: Entry(greenlet: Unmanaged.passUnretained(g)))
        green_ev_io_init(&entries[i].watcher, { _, w, _ in
            let entry = w!.pointee.data.assumingMemoryBound(to: Entry.self)
            entry.pointee.fired = true
            entry.pointee.greenlet._withUnsafeGuaranteedRef { $0.hub.ready($0) }
        }, fd, events)
        entries[i].watcher.data = UnsafeMutableRawPointer(entries + i)
        ev_io_start(hub.loop, &entries[i].watcher)
    }
    // The world outside wakes this wait: a virtual clock holds.
    hub.externalWaits += 1
    hub.fdWatches += all.count
    defer {
        hub.externalWaits -= 1
        for i in 0..<all.count { ev_io_stop(hub.loop, &entries[i].watcher) }
        hub.fdWatches -= all.count
        entries.deinitialize(count: all.count)
        entries.deallocate()
    }
    let anyFired = { (0..<all.count).contains { entries[$0].fired } }
    let block = {
        while !anyFired() { try hub.park(g, on: "select") }
    }
    if let timeout {
        _ = try hub.withDeadline(timeout, block)
    } else {
        try block()
    }
    var r: [Int32] = [], w: [Int32] = []
    for (i, (fd, events)) in all.enumerated() where entries[i].fired {
        if events == Int32(EV_READ) { r.append(fd) } else { w.append(fd) }
    }
    return (r, w)
}
