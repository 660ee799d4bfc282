"""gevent-peer: the figures of green-bench (Sources/GreenBench/GreenBench.swift),
measured the same way for gevent and greenlet, so they can be set side by side.

Prints one JSON object with green-bench's key names where a figure applies.
Each figure is the median of several runs, as in green-bench. Needs gevent
(`pip install gevent`; greenlet comes with it).

Counts are smaller than green-bench's where gevent is slow (each figure is
per operation, so the count only sets how long a run takes); the counts used
are given in the "note" key.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import gevent
import greenlet
from gevent.event import Event
import gevent.lock
import gevent.pool
import gevent.queue


def monotonic_ns():
    return time.perf_counter_ns()


def switch_ns(switches):
    """Raw greenlet.switch ping-pong between the main greenlet and a peer,
    per switch: the nearest thing to green-bench's switch_ns, with no hub
    involved. The Python loop around each switch is included; it cannot be
    taken out."""
    main = greenlet.getcurrent()

    def peer_body():
        while True:
            main.switch()

    peer = greenlet.greenlet(peer_body)
    round_trips = switches // 2
    t0 = monotonic_ns()
    for _ in range(round_trips):
        peer.switch()
    ns = (monotonic_ns() - t0) / (round_trips * 2)
    # Unwind the peer now rather than leave it to the garbage collector.
    peer.throw(greenlet.GreenletExit)
    return ns


def yield_ns(yields):
    """Two greenlets alternating gevent.sleep(0), per yield. Both wait on an
    Event first so the clock starts with both ready, as in green-bench."""
    per_greenlet = yields // 2
    start = Event()

    def body():
        start.wait()
        for _ in range(per_greenlet):
            gevent.sleep(0)

    a = gevent.spawn(body)
    b = gevent.spawn(body)
    gevent.sleep(0)  # both run up to their wait and park
    t0 = monotonic_ns()
    start.set()
    a.join()
    b.join()
    return (monotonic_ns() - t0) / (per_greenlet * 2)


def spawn_join_ns(count):
    """Spawn a greenlet that returns at once and join it, one at a time."""
    def nothing():
        pass

    t0 = monotonic_ns()
    for _ in range(count):
        gevent.spawn(nothing).join()
    return (monotonic_ns() - t0) / count


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def parked_rss(count):
    """Parks `count` greenlets on one Event and returns the RSS before
    spawning and once all are parked, as green-bench's parkedBytes does.

    Unlike green-bench it does not wake and join them afterwards: it only
    runs in a child process that exits next, and with gevent waking a
    million waiters and joining them takes longer than parking them."""
    event = Event()
    started = 0

    def body():
        nonlocal started
        started += 1
        event.wait()

    before = resident_bytes()
    greenlets = [gevent.spawn(body) for _ in range(count)]
    # Let every greenlet run up to its wait.
    while started < count:
        gevent.sleep(0)
    after = resident_bytes()
    return before, after


def parked_in_child(count):
    """Runs parked_rss in a fresh interpreter. CPython keeps freed objects in
    its allocator's pools and greenlet keeps saved stack buffers, so a second
    measurement in the same process would reuse the first one's memory and
    understate the growth. A fresh process per run measures what the first
    run in green-bench measures."""
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child-parked", str(count)],
        stdout=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        sys.exit(f"gevent-peer: parked child ({count} greenlets) exited with {proc.returncode}")
    before, after = (int(x) for x in proc.stdout.split())
    return before, after


def hand_off_ns(rounds, peer, main):
    """Times main (this greenlet's side of rounds round trips) against peer
    (the other side) in a spawned greenlet, once the peer waits; per
    one-way hand-off, two a round. Each side runs its own loop, so the
    figure holds no call per round that the loops themselves do not make."""
    g = gevent.spawn(peer)
    gevent.sleep(0)
    t0 = monotonic_ns()
    main()
    ns = (monotonic_ns() - t0) / (rounds * 2)
    g.join()
    return ns


def ping_pong_ns(rounds, make_queue):
    """Two greenlets pass an int back and forth through two queues, per
    message."""
    there, back = make_queue(), make_queue()
    total = 0

    def peer():
        for _ in range(rounds):
            back.put(there.get() + 1)

    def main():
        nonlocal total
        for i in range(rounds):
            there.put(i)
            total += back.get()

    ns = hand_off_ns(rounds, peer, main)
    assert total == rounds * (rounds + 1) // 2
    return ns


def event_wakeup_ns(rounds):
    """Event.set in one greenlet, the waiter in another runs; per wake-up."""
    ping, pong = Event(), Event()

    def peer():
        for _ in range(rounds):
            ping.wait()
            ping.clear()
            pong.set()

    def main():
        for _ in range(rounds):
            ping.set()
            pong.wait()
            pong.clear()

    return hand_off_ns(rounds, peer, main)


def lock_uncontended_ns(count):
    lock = gevent.lock.Semaphore(1)
    t0 = monotonic_ns()
    for _ in range(count):
        lock.acquire()
        lock.release()
    return (monotonic_ns() - t0) / count


def semaphore_handoff_ns(rounds):
    to_peer, to_main = gevent.lock.Semaphore(0), gevent.lock.Semaphore(0)

    def peer():
        for _ in range(rounds):
            to_peer.acquire()
            to_main.release()

    def main():
        for _ in range(rounds):
            to_peer.release()
            to_main.acquire()

    return hand_off_ns(rounds, peer, main)


def pool_map_ns(count):
    pool = gevent.pool.Pool(100)
    t0 = monotonic_ns()
    results = pool.map(lambda i: i * 2, range(count))
    ns = (monotonic_ns() - t0) / count
    assert results[-1] == (count - 1) * 2
    return ns


def fmt(v):
    """green-bench's number format: whole numbers for large or integral
    values, otherwise two decimals (truncated)."""
    if v >= 1000 or v == int(v):
        return int(round(v))
    return int(v * 100) / 100


def median(runs, f):
    return statistics.median(f() for _ in range(max(1, runs)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (always on)")
    ap.add_argument("--quick", action="store_true", help="a shortened run for smoke tests")
    ap.add_argument("--runs", type=int, help="runs per figure; the median is reported")
    ap.add_argument("--only", default="", help="measure only the figures whose key contains this")
    ap.add_argument("--max-parked", type=int, help="greenlets to park for max_parked_greenlets")
    ap.add_argument("--child-parked", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child_parked:
        before, after = parked_rss(args.child_parked)
        print(before, after, flush=True)
        # Skip interpreter teardown, which would unwind every parked greenlet.
        os._exit(0)

    runs = args.runs or (3 if args.quick else 7)
    scale = 10 if args.quick else 1
    switches = 1_000_000 // scale
    yields = 200_000 // scale
    spawns = 20_000 // scale
    parked = 100_000 // scale
    target = args.max_parked or (100_000 if args.quick else 1_000_000)

    def wanted(key):
        return args.only in key

    out = {}
    if wanted("switch_ns"):
        out["switch_ns"] = median(runs, lambda: switch_ns(switches))
    if wanted("yield_ns"):
        out["yield_ns"] = median(runs, lambda: yield_ns(yields))
    if wanted("spawn_join_ns"):
        out["spawn_join_ns"] = median(runs, lambda: spawn_join_ns(spawns))
    rounds = 50_000 // scale
    maps = 20_000 // scale
    if wanted("event_wakeup_ns"):
        out["event_wakeup_ns"] = median(runs, lambda: event_wakeup_ns(rounds))
    if wanted("queue_pingpong_ns"):
        out["queue_pingpong_ns"] = median(runs, lambda: ping_pong_ns(rounds, gevent.queue.Queue))
    if wanted("channel_pingpong_ns"):
        out["channel_pingpong_ns"] = median(runs, lambda: ping_pong_ns(rounds, gevent.queue.Channel))
    if wanted("lock_uncontended_ns"):
        out["lock_uncontended_ns"] = median(runs, lambda: lock_uncontended_ns(rounds * 4))
    if wanted("semaphore_handoff_ns"):
        out["semaphore_handoff_ns"] = median(runs, lambda: semaphore_handoff_ns(rounds))
    if wanted("pool_map_ns_per_item"):
        out["pool_map_ns_per_item"] = median(runs, lambda: pool_map_ns(maps))
    if wanted("parked_bytes_per_greenlet"):
        def per_greenlet():
            before, after = parked_in_child(parked)
            return (after - before) / parked
        out["parked_bytes_per_greenlet"] = median(1 if args.quick else 3, per_greenlet)
    if wanted("max_parked"):
        _, after = parked_in_child(target)
        out["max_parked_greenlets"] = target
        out["max_parked_rss_bytes"] = after

    out = {k: fmt(v) for k, v in out.items()}
    out["runs"] = runs
    out["quick"] = args.quick
    out["note"] = (
        f"gevent {gevent.__version__}, greenlet {greenlet.__version__}, "
        f"CPython {sys.version.split()[0]}; switch_ns is a raw greenlet.switch with no hub; "
        f"yield and spawn go through the gevent hub; counts: {switches} switches, "
        f"{yields} yields, {spawns} spawn+join, {parked} parked on one Event, "
        f"{target} for max_parked; parked figures in a fresh child process per run; "
        f"{rounds} messages/wake-ups/hand-offs, {rounds * 4} lock pairs, {maps} pool.map items; "
        f"lock_uncontended_ns is gevent.lock.Semaphore(1)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
