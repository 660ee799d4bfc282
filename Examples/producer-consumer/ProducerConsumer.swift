// producer-consumer: the seeds' pattern on greenlets, with a bounded
// queue and `close()` instead of sentinel values.
//
// Producers put numbered items into a bounded `Queue`; when the queue is
// full, a producer waits (backpressure) while consumers catch up. After
// every producer has finished, the queue is closed: each consumer's
// `for item in queue` loop drains what is left and ends. No "poison pill"
// per consumer, and no consumer can miss the end.
//
// The program checks that every item was consumed exactly once and prints
// the figures.
//
//   swift run -c release producer-consumer [--producers N] [--consumers N]
//                                         [--items N] [--capacity N] [--work-every N]
import ArgumentParser
import Glibc
import Green

@main
struct ProducerConsumer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "producer-consumer",
        abstract: "Producers and consumers of a bounded queue on greenlets, ended by close().")

    @Option(help: "Producer greenlets.")
    var producers = 4

    @Option(help: "Consumer greenlets.")
    var consumers = 8

    @Option(help: "Items each producer makes.")
    var items = 100_000

    @Option(help: "The queue's maxSize (0 for a rendezvous channel).")
    var capacity = 64

    @Option(help: "Each consumer yields (simulated I/O) after every N items; 0 never.")
    var workEvery = 10

    func validate() throws {
        guard producers > 0, consumers > 0, items >= 0, capacity >= 0, workEvery >= 0 else {
            throw ValidationError("counts must be positive (capacity and work-every may be 0)")
        }
    }

    mutating func run() throws {
        let queue = Queue<Int>(maxSize: capacity)
        let total = producers * items
        let workEvery = self.workEvery
        var seen = [Bool](repeating: false, count: total)
        var duplicates = 0
        var perConsumer = [Int](repeating: 0, count: consumers)
        var fullWaits = 0

        let start = monotonicSeconds()
        let producerGreenlets = (0..<producers).map { p in
            spawn(name: "producer-\(p)") { [items] in
                for i in 0..<items {
                    if queue.isFull { fullWaits += 1 }
                    try queue.put(p * items + i)
                }
            }
        }
        let consumerGreenlets = (0..<consumers).map { c in
            spawn(name: "consumer-\(c)") {
                var n = 0
                for item in queue {
                    if seen[item] { duplicates += 1 }
                    seen[item] = true
                    n += 1
                    if workEvery > 0 && n % workEvery == 0 { try Green.sleep(0) }
                }
                perConsumer[c] = n
            }
        }
        try joinAll(producerGreenlets, raiseError: true)
        queue.close()
        try joinAll(consumerGreenlets, raiseError: true)
        let seconds = monotonicSeconds() - start

        let consumed = perConsumer.reduce(0, +)
        let missing = seen.lazy.filter { !$0 }.count
        print("producers \(producers), consumers \(consumers), capacity \(capacity), items \(total)")
        print("consumed \(consumed), missing \(missing), duplicates \(duplicates)")
        print("per consumer: min \(perConsumer.min() ?? 0), max \(perConsumer.max() ?? 0)")
        print("puts that found the queue full: \(fullWaits)")
        print("time \(String(format3(seconds))) s, \(Int(Double(total) / max(seconds, 1e-9))) items/s")
        if consumed != total || missing != 0 || duplicates != 0 {
            throw ExitCode.failure
        }
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func format3(_ x: Double) -> String {
    let ms = Int((x * 1000).rounded())
    let frac = String(ms % 1000)
    return "\(ms / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
}
