import Foundation
import Glibc
import XCTest
import GreenTestSupport

/// Stack overflows in a greenlet end the process with a report naming the
/// greenlet. Run in a child process: the GreenProbe helper.
final class OverflowTests: XCTestCase {
    private let expectedReport = "swift-green: stack overflow in greenlet 'deep-recursion' (stack size 65536 bytes)"

    private func assertDiesByAbortWithReport(_ outcome: ProbeOutcome, how: String? = nil,
                                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(outcome.reason, .uncaughtSignal, "stdout: \(outcome.stdout)\nstderr: \(outcome.stderr)",
                       file: file, line: line)
        XCTAssertEqual(outcome.status, SIGABRT, "died by signal \(outcome.status), stderr: \(outcome.stderr)",
                       file: file, line: line)
        XCTAssertTrue(outcome.stderr.contains(expectedReport), "stderr: \(outcome.stderr)", file: file, line: line)
        if let how {
            XCTAssertTrue(outcome.stderr.contains(how), "stderr: \(outcome.stderr)", file: file, line: line)
        }
        XCTAssertFalse(outcome.stdout.contains("not detected"), file: file, line: line)
    }

    /// How many stacks each kind of guard protected.
    private struct GuardCounts: Equatable {
        let madvise: Int
        let mprotect: Int
        let canary: Int
    }

    /// The guard counts the probe printed before overflowing.
    private func guards(_ outcome: ProbeOutcome) -> GuardCounts? {
        guard let line = outcome.stdout.split(separator: "\n").first(where: { $0.hasPrefix("guards ") }) else {
            return nil
        }
        var counts: [String: Int] = [:]
        for field in line.split(separator: " ").dropFirst() {
            let kv = field.split(separator: "=")
            if kv.count == 2 { counts[String(kv[0])] = Int(kv[1]) }
        }
        return GuardCounts(madvise: counts["madvise"] ?? -1, mprotect: counts["mprotect"] ?? -1,
                           canary: counts["canary"] ?? -1)
    }

    func testTheProbeRunsAndExitsNormally() throws {
        let outcome = try Probe.run("ok")
        XCTAssertEqual(outcome.reason, .exit)
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertEqual(outcome.stdout, "ok 42\n")
    }

    func testAStackOverflowAbortsNamingTheGreenletAndItsStackSize() throws {
        let outcome = try Probe.run("overflow")
        assertDiesByAbortWithReport(outcome)
        XCTAssertTrue(outcome.stderr.contains("Give it a larger stack"), outcome.stderr)
    }

    func testAStackOverflowIsCaughtByAnMprotectGuardPage() throws {
        let outcome = try Probe.run("overflow", environment: ["GREEN_STACK_GUARD": "mprotect"])
        assertDiesByAbortWithReport(outcome, how: "it hit the guard page")
        // The hub's stack and the greenlet's: both mprotect-guarded.
        XCTAssertEqual(guards(outcome), GuardCounts(madvise: 0, mprotect: 2, canary: 0), outcome.stdout)
    }

    func testAStackOverflowIsCaughtByAMadviseGuardWhereTheKernelHasIt() throws {
        let outcome = try Probe.run("overflow", environment: ["GREEN_STACK_GUARD": "madvise"])
        // Falls back to mprotect on kernels before 6.13: a guard page either way.
        assertDiesByAbortWithReport(outcome, how: "it hit the guard page")
        let g = guards(outcome)
        XCTAssertEqual((g?.madvise ?? 0) + (g?.mprotect ?? 0), 2, outcome.stdout)
        XCTAssertEqual(g?.canary, 0, outcome.stdout)
    }

    func testAStackOverflowIsCaughtByTheCanaryWhenThereIsNoGuardPage() throws {
        try AnalysisTool.skipUnderAddressSanitizer(
            "the probe measures its recursion by the address of a local, which ASan may keep off the stack")
        let outcome = try Probe.run("overflow-canary", environment: ["GREEN_STACK_GUARD": "canary"])
        assertDiesByAbortWithReport(outcome, how: "its canary was overwritten")
        XCTAssertEqual(guards(outcome), GuardCounts(madvise: 0, mprotect: 0, canary: 2), outcome.stdout)
    }

    func testAStackOverflowIsReportedEvenWithTheSwiftBacktracerOn() throws {
        // The runtime's backtracer installs its own SIGSEGV handler first;
        // the overflow report must still come out, and the exit be SIGABRT.
        let outcome = try Probe.run("overflow", environment: ["SWIFT_BACKTRACE": "enable=yes,interactive=no"])
        assertDiesByAbortWithReport(outcome)
    }

    func testTheCanaryIsCheckedWhenTheOverflowingGreenletFinishes() throws {
        try AnalysisTool.skipUnderAddressSanitizer(
            "the probe measures its recursion by the address of a local, which ASan may keep off the stack")
        let outcome = try Probe.run("overflow-canary-finish", environment: ["GREEN_STACK_GUARD": "canary"])
        assertDiesByAbortWithReport(outcome, how: "canary was overwritten")
    }

    func testAnUnnamedGreenletsOverflowNamesItByItsID() throws {
        let outcome = try Probe.run("overflow-unnamed")
        XCTAssertEqual(outcome.reason, .uncaughtSignal, outcome.stderr)
        XCTAssertEqual(outcome.status, SIGABRT, outcome.stderr)
        guard let idLine = outcome.stdout.split(separator: "\n").first(where: { $0.hasPrefix("id ") }) else {
            return XCTFail("no id printed: \(outcome.stdout)")
        }
        let id = idLine.dropFirst(3)
        XCTAssertTrue(outcome.stderr.contains("stack overflow in greenlet 'Greenlet-\(id)' (stack size 65536 bytes)"),
                      "stderr: \(outcome.stderr)")
    }

    func testARenamedGreenletsOverflowUsesItsNewName() throws {
        let outcome = try Probe.run("overflow-renamed")
        assertDiesByAbortWithReport(outcome)
        XCTAssertFalse(outcome.stderr.contains("before-rename"), outcome.stderr)
    }
}
