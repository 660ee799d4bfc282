import Foundation
import Glibc
@testable import Green
import XCTest
import GreenTestSupport

final class DumpTests: GreenTestCase {
    func testTheDumpListsEveryHubsGreenletsWithStateWaitAndParent() throws {
        let sleeper = spawn(name: "sleeper") { try Green.sleep(30) }
        let child = spawn(name: "parent") {
            let inner = spawn(name: "child") { try Green.sleep(30) }
            defer { try? inner.kill() }
            try inner.get()
        }
        let other = try HubThread.start(name: "other-main")
        defer { other.stop(); _ = try? other.join(timeout: 5) }
        let release = AsyncResult<Bool>()
        let waiting = AsyncResult<Bool>()
        other.handle.spawn(name: "remote-waiter") {
            _ = waiting.set(true)
            _ = try release.get()
        }
        _ = try waiting.get(timeout: 5)
        try Green.sleep(0.05)
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let acceptor = spawn(name: "acceptor") { _ = try listener.accept() }
        defer { try? acceptor.kill() }
        try letOthersRun()
        let text = try GreenletDump.text(full: true)
        XCTAssertTrue(text.contains("acceptor: parked on Socket.accept for "), text)
        XCTAssertTrue(text.contains("sleeper: parked on sleep for "), text)
        XCTAssertTrue(text.contains("spawned by main"), text)
        XCTAssertTrue(text.contains("child: parked on sleep"), text)
        XCTAssertTrue(text.contains("spawned by parent"), text)
        XCTAssertTrue(text.contains("remote-waiter: parked on"), text)
        XCTAssertTrue(text.contains("other-main: parked on"), text)
        XCTAssertTrue(text.contains("main: running"), text)   // the dumping greenlet itself
        // "for N ms": N grows with the wait.
        let ms = text.split(separator: "\n").first { $0.contains("sleeper:") }
            .flatMap { $0.split(separator: " ").dropFirst(5).first }.flatMap { Int($0) } ?? -1
        XCTAssertGreaterThanOrEqual(ms, 40, text)
        _ = release.set(true)
        try sleeper.kill()
        try child.kill()
    }

    func testASignalPrintsTheDump() throws {
        let captured = AsyncResult<String>()
        let handler = GreenletDump.installSignalHandler(SIGUSR2, full: true) { _ = captured.set($0) }
        defer { handler.cancel() }
        let marker = spawn(name: "marked") { try Green.sleep(30) }
        defer { try? marker.kill() }
        try Green.sleep(0)
        raise(SIGUSR2)
        // A full dump looks up every frame's line: the first lookup in a
        // process reads the binary's line tables, seconds under a
        // sanitizer.
        let text = try captured.get(timeout: 120)
        XCTAssertTrue(text.contains("marked: parked on sleep"), text)
    }

    func testABlockedHubIsListedAsNotAnswering() throws {
        let blocked = try HubThread.start(name: "busy")
        let started = AsyncResult<Bool>()
        blocked.handle.spawn(name: "spinner") {
            _ = started.set(true)
            var t = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t)
            let end = t.tv_sec + 1
            repeat { clock_gettime(CLOCK_MONOTONIC, &t) } while t.tv_sec < end || (t.tv_sec == end && t.tv_nsec < 500_000_000)
        }
        _ = try started.get(timeout: 5)
        let text = try GreenletDump.text(timeout: 0.2)
        XCTAssertTrue(text.contains("no answer within 0.2 s"), text)
        blocked.stop()
        XCTAssertTrue(try blocked.join(timeout: 10))
    }

    // MARK: - Backtraces and groups

    /// Five kinds of wait, each in a function of its own that the dump
    /// must name.
    @inline(never) private static func waitOnEvent(_ e: Event) throws { try e.wait() }
    @inline(never) private static func waitOnSleep() throws { try Green.sleep(3600) }
    @inline(never) private static func waitOnQueue(_ q: Queue<Int>) throws { _ = try q.get() }
    @inline(never) private static func waitOnLock(_ l: Lock) throws { try l.acquire(); try l.release() }
    @inline(never) private static func waitOnSemaphore(_ s: Green.Semaphore) throws { try s.acquire() }
    private static let waitFunctions = ["waitOnEvent", "waitOnSleep", "waitOnQueue", "waitOnLock", "waitOnSemaphore"]

    /// Parks `count` greenlets, a fifth in each kind of wait, runs `body`,
    /// then ends them.
    private func whileParkedInFiveWays(_ count: Int, _ mode: StackMode, _ body: () throws -> Void) throws {
        let event = Event(), queue = Queue<Int>(), lock = Lock(), semaphore = Green.Semaphore(value: 0)
        try lock.acquire()
        var greenlets: [AnyGreenlet] = []
        for i in 0..<count {
            switch i % 5 {
            case 0: greenlets.append(spawn(stackMode: mode) { try Self.waitOnEvent(event) })
            case 1: greenlets.append(spawn(stackMode: mode) { try Self.waitOnSleep() })
            case 2: greenlets.append(spawn(stackMode: mode) { try Self.waitOnQueue(queue) })
            case 3: greenlets.append(spawn(stackMode: mode) { try Self.waitOnLock(lock) })
            default: greenlets.append(spawn(stackMode: mode) { try Self.waitOnSemaphore(semaphore) })
            }
        }
        defer {
            for g in greenlets { try? g.kill(block: false) }
            _ = try? joinAll(greenlets)
            try? lock.release()
        }
        try letOthersRun()
        XCTAssertEqual(greenlets.filter { $0.isStarted && !$0.isReady }.count, count, "all parked")
        try body()
    }

    private func checkGroupedDump(_ mode: StackMode) throws {
        try whileParkedInFiveWays(2_000, mode) {
            let text = try GreenletDump.text()
            let lines = text.split(separator: "\n")
            XCTAssertLessThanOrEqual(lines.count, 30, text)
            for (function, wait) in zip(Self.waitFunctions, ["Event.wait", "sleep", "Queue.get", "Lock.acquire", "Semaphore.acquire"]) {
                guard let header = lines.firstIndex(where: { $0.hasPrefix("400 parked on \(wait) for ") }) else {
                    return XCTFail("no group of 400 on \(wait):\n\(text)")
                }
                let frame = lines[header + 1]
                XCTAssertTrue(frame.contains("DumpTests.\(function)(") && frame.contains("DumpTests.swift:"),
                              "the group's first frame names the user function and its line: \(frame)")
            }
        }
    }

    func testParkedGreenletsAreGroupedByWhereTheyWaitNamingTheUserFrame() throws {
        try checkGroupedDump(.dedicated)
    }

    /// Compact greenlets' stacks are read from their saved images (all but
    /// the one whose stack is on the run stack).
    func testCompactGreenletsAreUnwoundFromTheirImages() throws {
        try XCTSkipUnless(StackMode.compactAvailable, "no compact mode in this build")
        try checkGroupedDump(.compact)
        try whileParkedInFiveWays(10, .compact) {
            let snapshot = try GreenletDump.snapshot(full: true)
            let compact = snapshot.greenlets.filter(\.isCompact)
            XCTAssertEqual(compact.count, 10)
            for g in compact {
                let user = try XCTUnwrap(g.userFrame, "\(g.name): \(g.frames)")
                XCTAssertTrue(Self.waitFunctions.contains { user.function.contains($0) }, "\(user)")
                XCTAssertEqual(user.file.map { $0.hasSuffix("DumpTests.swift") }, true, "\(user)")
            }
        }
    }

    /// A parked greenlet's backtrace ends where its stack begins: at the
    /// runtime's entry (and the C library's start of a ucontext context),
    /// with nothing read past it.
    func testAFullBacktraceEndsAtTheGreenletsEntry() throws {
        try whileParkedInFiveWays(5, .dedicated) {
            let snapshot = try GreenletDump.snapshot(full: true)
            let parked = snapshot.greenlets.filter { $0.waitingOn == "sleep" }
            XCTAssertEqual(parked.count, 1)
            for g in parked {
                let entry = try XCTUnwrap(g.frames.lastIndex { $0.function.contains("Hub.prepare") },
                                          "\(g.name): \(g.frames)")
                let below = g.frames[(entry + 1)...].map(\.function)
                let starts = ["green_start", "annotated_start", "ucontext_start", "__start_context"]
                XCTAssertLessThanOrEqual(below.count, 2, "\(below)")
                XCTAssertTrue(below.allSatisfy { f in starts.contains { f.hasPrefix($0) } }, "\(below)")
            }
        }
    }

    func testTheJSONDumpHasTheGroupsAndOnRequestEveryGreenlet() throws {
        try whileParkedInFiveWays(50, .dedicated) {
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(GreenletDump.json(full: true).utf8))
                                         as? [String: Any])
            let groups = try XCTUnwrap(json["groups"] as? [[String: Any]])
            let onSleep = try XCTUnwrap(groups.first { $0["waiting_on"] as? String == "sleep" })
            XCTAssertEqual(onSleep["count"] as? Int, 10)
            let first = try XCTUnwrap((onSleep["frames"] as? [[String: Any]])?.first)
            XCTAssertEqual(first["library"] as? Bool, false)
            XCTAssertTrue((first["function"] as? String)?.contains("waitOnSleep") ?? false, "\(first)")
            XCTAssertTrue((first["file"] as? String)?.hasSuffix("DumpTests.swift") ?? false, "\(first)")
            let list = try XCTUnwrap(json["list"] as? [[String: Any]])
            XCTAssertEqual(list.count, json["greenlets"] as? Int)
            XCTAssertGreaterThanOrEqual(list.count, 51)
        }
    }

    /// A group shows frames of user code; without any (a library's own
    /// greenlet, a crawler's worker), the library's frames above the core.
    func testAGroupWithoutUserCodeShowsTheLibrarysFrames() {
        typealias Frame = GreenletDump.Snapshot.Frame
        func frame(_ f: String, library: Bool, core: Bool) -> Frame {
            Frame(function: f, file: nil, line: nil, image: nil, isLibrary: library, isCore: core)
        }
        let park = frame("Hub.park", library: true, core: true)
        let fill = frame("HTTPClientCall.fill", library: true, core: false)
        let user = frame("handle(request:)", library: false, core: false)
        func shown(_ frames: [Frame]) -> [String] {
            GreenletDump.Snapshot.shown(frames, 2, \.isLibrary, \.isCore).map(\.function)
        }
        XCTAssertEqual(shown([park, fill, user]), ["handle(request:)"])
        XCTAssertEqual(shown([park, fill]), ["HTTPClientCall.fill"])
        XCTAssertEqual(shown([park]), ["Hub.park"])
        XCTAssertEqual(GreenletDump.userFrame(in: [park, fill])?.function, "HTTPClientCall.fill")
    }
}
