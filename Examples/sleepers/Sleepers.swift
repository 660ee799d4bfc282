// sleepers: thousands of greenlets sleeping at once finish in about the
// time of one sleep. The demo of the greenlet core until the crawler lands.
//
//   swift run -c release sleepers [--count N] [--seconds S]
import ArgumentParser
import Glibc
import Green

@main
struct Sleepers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Spawn N greenlets that each sleep S seconds; they all finish in about S.")

    @Option(help: "How many greenlets to spawn.")
    var count = 10_000

    @Option(help: "How long each one sleeps, in seconds.")
    var seconds = 1.0

    mutating func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        guard seconds >= 0 else { throw ValidationError("--seconds must not be negative") }
    }

    mutating func run() throws {
        let seconds = self.seconds
        let start = now()
        var finished = 0
        let greenlets: [AnyGreenlet] = (0..<count).map { i in
            spawn(name: "sleeper-\(i)") {
                try Green.sleep(seconds)
                finished += 1
            }
        }
        try joinAll(greenlets, raiseError: true)
        let elapsed = now() - start
        let stats = Hub.current.stackStats
        print("\(finished) greenlets each slept \(seconds) s; all done in \(format(elapsed)) s "
              + "(\(format(elapsed / seconds))x one sleep; sequentially it would take \(format(Double(count) * seconds)) s)")
        print("stacks: \(stats.total) carved from \(stats.slabs) slab mapping(s), "
              + "\(stats.madviseGuarded + stats.mprotectGuarded) with guard pages, \(stats.free) back in the pool")
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func format(_ x: Double) -> String {
    String(Double(Int((x * 1000).rounded())) / 1000)
}
