// Figures of the greenlet dump: how long a grouped dump of many parked
// greenlets takes, and how long it is.
import Foundation
import Glibc
import Green

/// Five kinds of wait, each in a function of its own (the dump names it).
enum DumpWaits {
    @inline(never) static func onEvent(_ e: Event) throws { try e.wait() }
    @inline(never) static func onSleep() throws { try Green.sleep(3600) }
    @inline(never) static func onQueue(_ q: Queue<Int>) throws { _ = try q.get() }
    @inline(never) static func onLock(_ l: Lock) throws { try l.acquire(); try l.release() }
    @inline(never) static func onSemaphore(_ s: Green.Semaphore) throws { try s.acquire() }
}

/// Parks `count` greenlets in five kinds of wait and takes the grouped
/// dump twice: the first pays for reading the binary's symbols and debug
/// information, the second finds them cached. Milliseconds of each, and
/// the lines of the second.
func dumpFigures(_ count: Int, stackMode: StackMode) throws -> (coldMs: Double, warmMs: Double, lines: Int) {
    let event = Event(), queue = Queue<Int>(), lock = Lock(), semaphore = Green.Semaphore(value: 0)
    try lock.acquire()
    var greenlets: [AnyGreenlet] = []
    greenlets.reserveCapacity(count)
    for i in 0..<count {
        let g: AnyGreenlet
        switch i % 5 {
        case 0: g = spawn(stackMode: stackMode) { try DumpWaits.onEvent(event) }
        case 1: g = spawn(stackMode: stackMode) { try DumpWaits.onSleep() }
        case 2: g = spawn(stackMode: stackMode) { try DumpWaits.onQueue(queue) }
        case 3: g = spawn(stackMode: stackMode) { try DumpWaits.onLock(lock) }
        default: g = spawn(stackMode: stackMode) { try DumpWaits.onSemaphore(semaphore) }
        }
        greenlets.append(g)
    }
    try Green.sleep(0)
    var ms: [Double] = []
    var text = ""
    for _ in 0..<2 {
        let t0 = monotonicNs()
        text = try GreenletDump.text()
        ms.append(Double(monotonicNs() - t0) / 1e6)
    }
    // GREEN_BENCH_PRINT_DUMP=1 shows the dump measured.
    if getenv("GREEN_BENCH_PRINT_DUMP") != nil { FileHandle.standardError.write(Data(text.utf8)) }
    try lock.release()
    for g in greenlets { try g.kill(block: false) }
    _ = try joinAll(greenlets)
    return (ms[0], ms[1], text.split(separator: "\n").count)
}
