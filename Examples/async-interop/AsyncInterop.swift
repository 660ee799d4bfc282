// async-interop: an HTTP server on greenlets whose handler awaits async
// code (an actor-backed cache that fills itself through an AsyncStream
// pipeline) on the same hub: the actor's executor is the hub's
// (`HubExecutor`), so the handler's greenlet, the awaited task and the
// actor's jobs all run on one thread, and each answer says which.
//
//   swift run -c release async-interop --port 8080
//   curl http://127.0.0.1:8080/squares/1000
//   swift run -c release async-interop --self-test 200    # checks itself, exit 1 on a wrong answer
import ArgumentParser
import Glibc
import Green
import GreenHTTP

/// Sums of squares below N, computed once per N through an AsyncStream
/// and kept. Isolated to the hub's executor: its jobs run on the hub's
/// thread, between the server's greenlets.
actor SquareCache {
    private let hubExecutor: HubExecutor
    private var sums: [Int: Int] = [:]
    /// Sums being computed: a second request for one waits for it (the
    /// actor is reentrant at each await, so it would compute it twice).
    private var inFlight: [Int: Task<Int, Never>] = [:]
    private(set) var computed = 0

    init(on executor: HubExecutor) { hubExecutor = executor }

    nonisolated var unownedExecutor: UnownedSerialExecutor { hubExecutor.asUnownedSerialExecutor() }

    /// The sum, whether it was cached, and the thread this ran on.
    func sumOfSquares(below n: Int) async -> (sum: Int, cached: Bool, thread: UInt) {
        if let sum = sums[n] { return (sum, true, UInt(pthread_self())) }
        if let pending = inFlight[n] { return (await pending.value, true, UInt(pthread_self())) }
        // A pipeline: numbers in, squares out, summed as they come (a task
        // made here is isolated to the actor: it runs on the hub too).
        let task = Task {
            let numbers = AsyncStream<Int> { continuation in
                for i in 0..<n { continuation.yield(i) }
                continuation.finish()
            }
            var sum = 0
            for await i in numbers.map({ $0 * $0 }) { sum &+= i }
            return sum
        }
        inFlight[n] = task
        let sum = await task.value
        inFlight[n] = nil
        sums[n] = sum
        computed += 1
        return (sum, false, UInt(pthread_self()))
    }
}

@main
struct AsyncInterop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "async-interop",
        abstract: "An HTTP server on greenlets whose handler awaits an actor on the same hub.")

    @Option(help: "Port to serve on (0 picks a free one).")
    var port: UInt16 = 8080

    @Option(help: "Serve on a free port, make this many requests from greenlets, check every answer, and exit.")
    var selfTest: Int?

    func run() throws {
        let hub = Hub.current
        let cache = SquareCache(on: hub.executor)
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: selfTest == nil ? port : 0)) { request in
            let parts = request.path.split(separator: "/")
            guard parts.count == 2, parts[0] == "squares", let n = Int(parts[1]), (0...1_000_000).contains(n) else {
                return HTTPResponse(status: 404, text: "try /squares/N (N up to 1,000,000)\n")
            }
            let handlerThread = UInt(pthread_self())
            let (sum, cached, actorThread) = try awaitAsync { await cache.sumOfSquares(below: n) }
            let text = "sum of squares below \(n): \(sum) (\(cached ? "cached" : "computed")); "
                + "handler on thread \(handlerThread), actor on thread \(actorThread), same thread: \(handlerThread == actorThread)\n"
            return HTTPResponse(text: text)
        }
        print("listening on \(server.address)")
        guard let requests = selfTest else {
            try server.serveForever()
            return
        }
        server.start()
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        let client = HTTPClient()
        defer { client.close() }
        let base = "http://127.0.0.1:\(server.address.port)/squares/"
        let group = Group()
        var wrong: [String] = []
        for i in 0..<requests {
            let n = 1000 + i % 10
            try group.spawn {
                let text = try client.get(base + "\(n)").text
                let want = (0..<n).reduce(0) { $0 &+ $1 * $1 }
                if !text.contains(": \(want) (") || !text.contains("same thread: true") { wrong.append(text) }
            }
        }
        _ = try withTimeout(60) { try group.join(raiseError: true) }
        let computed = try awaitAsync { await cache.computed }
        print("\(requests) requests: \(wrong.count) wrong, \(computed) sums computed (10 distinct), "
              + "every handler and actor job on the hub's thread \(UInt(pthread_self()))")
        if !wrong.isEmpty || computed != Swift.min(10, requests) {
            for w in wrong.prefix(3) { print("wrong: \(w)") }
            throw ExitCode(1)
        }
    }
}
