// bank-balance: the seeds' `change_it` example, on greenlets.
//
// Two workers each add and then subtract their own amount (5 and 8) to a
// shared balance, 10,000 times. Every pair of updates cancels out, so the
// balance must end at 0.
//
// With OS threads (the seeds' Python version) the balance goes wrong
// without a lock, because a thread can be preempted between reading the
// balance and writing it back. Greenlets are never preempted: a greenlet
// runs until it makes a blocking call. So:
//
//   * `plain`: `balance = balance + n` with nothing blocking in between is
//     already safe on greenlets. No lock needed, balance 0.
//   * `unlocked`: the update reads the balance, makes a blocking call (here
//     `Green.sleep(0)`, standing in for a database or network round trip),
//     then writes. The other worker runs during the call and its update
//     is overwritten: lost updates, a balance that is not 0.
//   * `locked`: the same update inside `Lock.withLock`. The other worker
//     waits at the lock while the first one is inside, so no update is
//     lost: balance 0.
//
// The rule on greenlets: a read-modify-write of shared state needs a lock
// exactly when it spans a blocking call.
//
//   swift run -c release bank-balance [--iterations N] [--mode plain|unlocked|locked|all]
import ArgumentParser
import Green

@main
struct BankBalance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bank-balance",
        abstract: "Lost updates with and without a Lock, on greenlets.")

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case plain, unlocked, locked, all
    }

    @Option(help: "Updates per worker.")
    var iterations = 10_000

    @Option(help: "plain, unlocked, locked or all.")
    var mode = Mode.all

    mutating func run() throws {
        let modes: [Mode] = mode == .all ? [.plain, .unlocked, .locked] : [mode]
        for m in modes {
            let (balance, switches) = try runWorkers(mode: m, iterations: iterations)
            let verdict = balance == 0 ? "correct" : "WRONG: updates were lost"
            print("\(m.rawValue.padding(8)) balance \(String(balance).padding(8)) (\(verdict); \(switches) switches inside updates)")
        }
    }
}

/// Runs the two workers and returns the final balance and how many times
/// an update was suspended in the middle.
func runWorkers(mode: BankBalance.Mode, iterations: Int) throws -> (Int, Int) {
    var balance = 0
    var switches = 0
    let lock = Lock()

    func changeIt(_ n: Int) throws {
        switch mode {
        case .plain, .all:
            balance = balance + n
            balance = balance - n
        case .unlocked:
            try slowUpdate(n)
        case .locked:
            try lock.withLock { try slowUpdate(n) }
        }
    }

    // Read, make a blocking call, write: the shape of a real update that
    // talks to something in between. Round trips take varying time (0 to
    // 2 turns of the hub, from a fixed pseudo-random sequence, so every
    // run prints the same figures).
    var seed: UInt64 = 0x9E3779B97F4A7C15
    func roundTrip() throws {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        for _ in 0..<Int(seed >> 62) % 3 {
            try Green.sleep(0)
            switches += 1
        }
    }

    func slowUpdate(_ n: Int) throws {
        var b = balance
        try roundTrip()
        balance = b + n
        b = balance
        try roundTrip()
        balance = b - n
    }

    let workers = [5, 8].map { n in
        spawn(name: "worker-\(n)") {
            for _ in 0..<iterations { try changeIt(n) }
        }
    }
    try joinAll(workers, raiseError: true)
    return (balance, switches)
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
