import Foundation
import Glibc
import Green
import GreenCompare
import GreenCompareWorkloads
import GreenTestSupport
import XCTest

/// green-compare's memory per task, checked on a known allocation: the
/// touch-heap workload, whose every task writes a known number of heap
/// bytes and keeps them until all the tasks alive at once have theirs,
/// run through green-compare itself (a child per model, its baseline
/// run with one task, the parent's sampling).
final class TaskMemoryTests: GreenTestCase {
    struct Figures {
        let user: Double
        let kernel: Double?
        let parts: [String: Double]
    }

    /// Runs green-compare and returns each model's per-task figures.
    func perTask(_ arguments: [String]) throws -> [String: Figures] {
        // A sanitizer's shadow memory and allocator would be most of what
        // a task costs.
        try AnalysisTool.skipUnderSanitizers("memory figures under a sanitizer are the sanitizer's")
        guard let tool = builtExecutable(named: "green-compare") ?? builtExecutable(named: "GreenCompareTool") else {
            throw TestError("green-compare not found next to the test bundle")
        }
        let child = try Subprocess([tool, "--workload", "touch-heap", "--json"] + arguments,
                                   stdin: .null, stdout: .pipe, stderr: .inherit)
        let (out, _) = try withTimeout(300) { try child.communicate() }
        XCTAssertEqual(child.status, .exited(0))
        let object = try JSONSerialization.jsonObject(with: Data(out)) as? [String: Any]
        var figures: [String: Figures] = [:]
        for r in object?["results"] as? [[String: Any]] ?? [] {
            guard let model = r["model"] as? String else { continue }
            guard let user = r["task_user_bytes"] as? Double else {
                XCTFail("\(model): no task_user_bytes in \(r)")
                continue
            }
            figures[model] = Figures(user: user, kernel: r["task_kernel_bytes"] as? Double,
                                     parts: r["task_kernel_parts"] as? [String: Double] ?? [:])
        }
        return figures
    }

    /// 200 greenlets and 200 threads, each keeping 256 KiB: one more task
    /// costs 256 KiB of user memory plus the model's own per-task
    /// overhead (the same run keeping nothing), within 10% of 256 KiB;
    /// and a greenlet's overhead is small enough that 256 KiB alone is
    /// within 10% too.
    func testPerTaskUserMemoryOfAKnownAllocationOnGreenletsAndThreads() throws {
        let n = 256.0 * 1024
        let common = ["--tasks", "200", "--concurrency", "200", "--latency", "0.05", "--models", "greenlets,threads"]
        let touched = try perTask(common + ["--touch-bytes", String(Int(n))])
        let bare = try perTask(common + ["--touch-bytes", "0"])
        for model in ["greenlets", "threads"] {
            guard let t = touched[model], let b = bare[model] else { return XCTFail("no \(model) figures") }
            XCTAssertEqual(t.user - b.user, n, accuracy: 0.1 * n,
                           "\(model): \(t.user) per task with 256 KiB each, \(b.user) without")
            // The exact parts of the kernel's share: one thread per task
            // for threads, none for greenlets.
            XCTAssertEqual(t.parts["threads"] ?? -1, model == "threads" ? 1 : 0, accuracy: 0.01, "\(model): \(t.parts)")
            XCTAssertNotNil(t.kernel, "\(model): no task_kernel_bytes")
        }
        if let g = touched["greenlets"] {
            XCTAssertEqual(g.user, n, accuracy: 0.1 * n, "greenlets: \(g.user) per task")
        }
    }

    /// 8 worker processes, each keeping 8 MiB: one more task costs 8 MiB
    /// of PSS above a worker process's own (the same run keeping nothing),
    /// within 10%.
    func testPerTaskUserMemoryOfAKnownAllocationOnProcesses() throws {
        let n = 8.0 * 1024 * 1024
        let common = ["--tasks", "8", "--concurrency", "8", "--process-limit", "8", "--latency", "0.2",
                      "--models", "processes"]
        let touched = try perTask(common + ["--touch-bytes", String(Int(n))])
        let bare = try perTask(common + ["--touch-bytes", "0"])
        guard let t = touched["processes"], let b = bare["processes"] else { return XCTFail("no processes figures") }
        XCTAssertEqual(t.user - b.user, n, accuracy: 0.1 * n,
                       "processes: \(t.user) per task with 8 MiB each, \(b.user) without")
    }
}
