import Dispatch
import Foundation
import Glibc
import Green
import Synchronization
import XCTest
import GreenTestSupport

/// One hub per OS thread: hubs on different threads run independently.
final class ThreadTests: GreenTestCase {
    /// What a thread's run reports back.
    struct ThreadReport: Sendable {
        var finished = 0
        var spawned = 0
        var hubThreadIsSelf = false
        var liveAfter = -1
        var ids: [UInt64] = []
        var error: String?
    }

    final class Reports: Sendable {
        let byThread = Locked<[Int: ThreadReport]>([:])
    }

    /// Runs `body` on `count` new OS threads at once and waits (bounded)
    /// until every one has finished.
    private func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> ThreadReport) -> [Int: ThreadReport] {
        let reports = Reports()
        let done = DispatchSemaphore(value: 0)
        for t in 0..<count {
            let thread = Thread {
                let report = body(t)
                reports.byThread.withLock { $0[t] = report }
                done.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        for _ in 0..<count {
            if done.wait(timeout: .now() + 120) == .timedOut {
                XCTFail("a thread did not finish within 120 s")
                break
            }
        }
        return reports.byThread.withLock { $0 }
    }

    func testTwoThreadsEachRunTheirOwnHubConcurrently() throws {
        let perThread = 1000
        let reports = onThreads(2) { _ in
            var report = ThreadReport()
            do {
                var finished = 0
                let gs = (0..<perThread).map { _ in
                    spawn {
                        try Green.sleep(0.05)
                        finished += 1
                    }
                }
                report.spawned = gs.count
                try joinAll(gs)
                report.finished = finished
                report.hubThreadIsSelf = pthread_equal(Hub.current.thread, pthread_self()) != 0
                report.liveAfter = Hub.current.liveGreenlets
            } catch {
                report.error = "\(error)"
            }
            return report
        }
        XCTAssertEqual(reports.count, 2)
        for (t, r) in reports.sorted(by: { $0.key < $1.key }) {
            XCTAssertNil(r.error, "thread \(t)")
            XCTAssertEqual(r.spawned, perThread, "thread \(t)")
            XCTAssertEqual(r.finished, perThread, "thread \(t)")
            XCTAssertTrue(r.hubThreadIsSelf, "thread \(t)")
            XCTAssertEqual(r.liveAfter, 0, "thread \(t)")
        }
    }

    func testAThreadsHubIsNotTheMainThreadsHub() throws {
        let mainHub = UInt(bitPattern: Unmanaged.passUnretained(Hub.current).toOpaque())
        let hubs = Locked<[UInt]>([])
        let reports = onThreads(1) { _ in
            let hub = Hub.current
            hubs.withLock { $0.append(UInt(bitPattern: Unmanaged.passUnretained(hub).toOpaque())) }
            var report = ThreadReport()
            report.hubThreadIsSelf = pthread_equal(hub.thread, pthread_self()) != 0
            // The same hub for every use on this thread.
            report.finished = Hub.current === hub ? 1 : 0
            return report
        }
        XCTAssertEqual(reports[0]?.hubThreadIsSelf, true)
        XCTAssertEqual(reports[0]?.finished, 1)
        let threadHub = hubs.withLock { $0 }
        XCTAssertEqual(threadHub.count, 1)
        XCTAssertNotEqual(threadHub.first, mainHub)
        XCTAssertTrue(pthread_equal(Hub.current.thread, pthread_self()) != 0)
    }

    func testGreenletIDsAreUniqueAcrossThreads() throws {
        let reports = onThreads(2) { _ in
            var report = ThreadReport()
            do {
                let gs = (0..<600).map { _ in spawn { AnyGreenlet.current.id } }
                report.ids = try gs.map { try $0.get() }
            } catch {
                report.error = "\(error)"
            }
            return report
        }
        let a = reports[0]?.ids ?? []
        let b = reports[1]?.ids ?? []
        XCTAssertEqual(a.count, 600)
        XCTAssertEqual(b.count, 600)
        XCTAssertTrue(Set(a).isDisjoint(with: b))
        XCTAssertEqual(Set(a + b).count, 1200)
        // And none is one of this thread's.
        let mine = spawn { AnyGreenlet.current.id }
        XCTAssertFalse(Set(a + b).contains(try mine.get()))
    }

    func testTheMainThreadsHubKeepsRunningWhileOtherThreadsUseTheirs() throws {
        // Greenlets on this thread run while a thread's hub is busy.
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let g = spawn { try Green.sleep(0.001) }
            _ = try? g.join()
            started.signal()
            // Blocks this OS thread (not a greenlet call) until released.
            _ = release.wait(timeout: .now() + 120)
            done.signal()
        }
        thread.start()
        XCTAssertEqual(started.wait(timeout: .now() + 120), .success)
        var n = 0
        let gs = (0..<100).map { _ in spawn { try Green.sleep(0); n += 1 } }
        try joinAll(gs)
        XCTAssertEqual(n, 100)
        release.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success)
    }

    func testADeadlockOnAThreadIsReportedToThatThreadsMainGreenlet() throws {
        let reports = onThreads(1) { _ in
            var report = ThreadReport()
            do {
                try Event().wait()
                report.error = "returned"
            } catch GreenError.wouldBlockForever {
                report.finished = 1
            } catch {
                report.error = "\(error)"
            }
            return report
        }
        XCTAssertNil(reports[0]?.error)
        XCTAssertEqual(reports[0]?.finished, 1)
    }

    func testAThreadThatExitsWithParkedGreenletsDoesNotDisturbTheProcess() throws {
        // Its greenlets are abandoned with its hub, as in gevent.
        let reports = onThreads(1) { _ in
            var report = ThreadReport()
            let never = Event()
            let gs = (0..<50).map { _ in spawn { try never.wait() } }
            do {
                try Green.sleep(0)
                report.spawned = gs.count
                report.finished = gs.filter(\.isReady).count
            } catch {
                report.error = "\(error)"
            }
            return report
        }
        XCTAssertNil(reports[0]?.error)
        XCTAssertEqual(reports[0]?.spawned, 50)
        XCTAssertEqual(reports[0]?.finished, 0)
        // This thread's hub still works.
        XCTAssertEqual(try spawn { () throws -> Int in try Green.sleep(0.001); return 1 }.get(), 1)
    }
}
