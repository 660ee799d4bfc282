import Glibc
import Green
import XCTest
import GreenTestSupport

/// Swift's dynamic exclusivity checking across greenlet switches: each
/// greenlet has its own set of open accesses, as a Swift task does.
final class ExclusivityTests: GreenTestCase {
    final class Box {
        var n = 0
        var log: [String] = []
    }

    /// Holds a modify access to `x` open across a switch.
    private func bump(_ x: inout Int) throws {
        x += 1
        try Green.sleep(0.01)
        x += 1
    }

    private func bumpAcrossYields(_ x: inout Int, _ yields: Int) throws {
        x += 1
        for _ in 0..<yields { try Green.sleep(0) }
        x += 1
    }

    func testAReadFromMainWhileAGreenletIsSuspendedInsideAnInoutAccessDoesNotTrap() throws {
        let box = Box()
        let g = spawn { try self.bump(&box.n) }
        try Green.sleep(0)
        XCTAssertTrue(g.isStarted)
        // g is parked in the middle of its modify access to box.n.
        XCTAssertEqual(box.n, 1)
        box.log.append("main read \(box.n)")
        try g.join()
        XCTAssertTrue(g.isSuccessful)
        XCTAssertEqual(box.n, 2)
    }

    func testAGreenletReadsWhileMainIsSuspendedInsideAnInoutAccess() throws {
        let box = Box()
        var seen: [Int] = []
        let reader = spawn {
            for _ in 0..<3 {
                seen.append(box.n)
                try Green.sleep(0)
            }
        }
        try bumpAcrossYields(&box.n, 5)
        try reader.join()
        XCTAssertEqual(seen, [1, 1, 1])
        XCTAssertEqual(box.n, 2)
    }

    func testManyGreenletsSuspendedInsideInoutAccessesToOneProperty() throws {
        let box = Box()
        let gs = (0..<50).map { i in spawn { try self.bumpAcrossYields(&box.n, i % 5 + 1) } }
        try Green.sleep(0)
        XCTAssertEqual(box.n, 50)
        try joinAll(gs)
        XCTAssertTrue(gs.allSatisfy { $0.isSuccessful })
        XCTAssertEqual(box.n, 100)
    }

    func testAGreenletKilledInsideAnInoutAccessLeavesNoAccessBehind() throws {
        let box = Box()
        let g = spawn { try self.bumpAcrossYields(&box.n, 1_000_000) }
        try Green.sleep(0)
        try g.kill()
        XCTAssertTrue(g.error is GreenletExit)
        // The access ended when the kill unwound g: a modify from here is fine.
        box.n += 10
        try bump(&box.n)
        XCTAssertEqual(box.n, 13)
    }

    func testExclusivityIsStillEnforcedWithinAGreenletAcrossASwitch() throws {
        // A greenlet that conflicts with its own open access, after a
        // switch, must still trap: its access set was swapped out and back
        // in, not dropped. It ends the process, so it runs in the probe.
        let outcome = try Probe.run("exclusivity-conflict")
        XCTAssertEqual(outcome.reason, .uncaughtSignal, "stdout: \(outcome.stdout)\nstderr: \(outcome.stderr)")
        XCTAssertTrue(outcome.stderr.contains("Simultaneous accesses"), "stderr: \(outcome.stderr)")
        XCTAssertFalse(outcome.stdout.contains("not detected"), outcome.stdout)
    }
}
