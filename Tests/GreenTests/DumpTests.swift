import Glibc
import Green
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
        let text = try GreenletDump.text()
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
        let handler = GreenletDump.installSignalHandler(SIGUSR2) { _ = captured.set($0) }
        defer { handler.cancel() }
        let marker = spawn(name: "marked") { try Green.sleep(30) }
        defer { try? marker.kill() }
        try Green.sleep(0)
        raise(SIGUSR2)
        let text = try captured.get(timeout: 5)
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
}
