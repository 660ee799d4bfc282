// Figures of the synchronization primitives, queues and pools.
import Green

/// Times `main` (this greenlet's side of `rounds` round trips) against a
/// spawned `peer` (the other side), once the peer waits; per one-way
/// hand-off, two a round. Each side runs its own loop, so the figure
/// holds no call per round that the loops themselves do not make.
@inline(__always)
func handOffNs(_ rounds: Int, peer body: @escaping () throws -> Void, main: () throws -> Void) throws -> Double {
    let peer = spawn(body)
    try Green.sleep(0)
    let t0 = monotonicNs()
    try main()
    let ns = Double(monotonicNs() - t0) / Double(rounds * 2)
    try peer.join()
    return ns
}

/// One greenlet sets an event another waits on, back and forth; per
/// wake-up (set -> the waiter runs).
func eventWakeupNs(_ rounds: Int) throws -> Double {
    let ping = Event(), pong = Event()
    return try handOffNs(rounds, peer: {
        for _ in 0..<rounds {
            try ping.wait()
            ping.clear()
            pong.set()
        }
    }, main: {
        for _ in 0..<rounds {
            ping.set()
            try pong.wait()
            pong.clear()
        }
    })
}

/// Two greenlets pass a message back and forth through two queues (or
/// two channels); per message.
func pingPongNs(_ rounds: Int, _ makeQueue: () -> Queue<Int>) throws -> Double {
    let there = makeQueue(), back = makeQueue()
    var sum = 0
    let ns = try handOffNs(rounds, peer: {
        for _ in 0..<rounds { try back.put(try there.get() &+ 1) }
    }, main: {
        for i in 0..<rounds {
            try there.put(i)
            sum &+= try back.get()
        }
    })
    precondition(sum == rounds * (rounds + 1) / 2, "ping-pong lost messages")
    return ns
}

/// Acquire and release of a lock nobody else wants; per pair.
func lockUncontendedNs(_ count: Int) throws -> Double {
    let lock = Lock()
    var n = 0
    let t0 = monotonicNs()
    for _ in 0..<count {
        try lock.acquire()
        n &+= 1
        try lock.release()
    }
    let ns = Double(monotonicNs() - t0) / Double(count)
    precondition(n == count)
    return ns
}

/// A permit passed between two greenlets that each wait for it: release
/// hands the permit straight to the waiter; per hand-off.
func semaphoreHandoffNs(_ rounds: Int) throws -> Double {
    let toPeer = Semaphore(value: 0), toMain = Semaphore(value: 0)
    return try handOffNs(rounds, peer: {
        for _ in 0..<rounds {
            try toPeer.acquire()
            toMain.release()
        }
    }, main: {
        for _ in 0..<rounds {
            toPeer.release()
            try toMain.acquire()
        }
    })
}

/// `Pool(size: 100).map` over `count` trivial items; per item.
func poolMapNs(_ count: Int) throws -> Double {
    let pool = Pool(size: 100)
    let t0 = monotonicNs()
    let results = try pool.map(0..<count) { $0 &* 2 }
    let ns = Double(monotonicNs() - t0) / Double(count)
    precondition(results.count == count && results[count - 1] == (count - 1) * 2)
    return ns
}

/// `Pool(size: 100).map` over items that each yield once, so the pool's
/// 100 workers interleave; per item.
func poolMapBlockingNs(_ count: Int) throws -> Double {
    let pool = Pool(size: 100)
    let t0 = monotonicNs()
    let results = try pool.map(0..<count) { i -> Int in
        try Green.sleep(0)
        return i
    }
    let ns = Double(monotonicNs() - t0) / Double(count)
    precondition(results.count == count)
    return ns
}
