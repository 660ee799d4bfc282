import CGreenContext
import Logging

extension Hub {
    /// Reports the compact greenlets whose stack image outgrew
    /// `compactReportLimit` (see `StackMode`). The image is saved inside a
    /// context switch, where no Swift code may run. Without a logger the
    /// switch writes the report to stderr itself, as it always has; with
    /// one (see `GreenDiagnostics`), it queues the report on the run
    /// stack and the hub takes it here, at its next loop pass (within
    /// `runBudget` switches, or when it next waits for events), to log it
    /// at level `warning` with metadata `greenlet`, `greenlet_id`, `hub`,
    /// `image_bytes` and `report_limit`.
    func reportLargeCompactImages(_ shared: UnsafeMutablePointer<green_shared_stack>) {
        var report = green_compact_report()
        while green_shared_stack_take_report(shared, &report) != 0 {
            let r = report
            GreenDiagnostics.emit(
                .warning, "a compact greenlet parked with a stack image over the report limit: it costs that much heap while parked",
                metadata: [
                    "greenlet": "\(Hub.name(of: r))",
                    "greenlet_id": "\(r.id)",
                    "hub": "\(id)",
                    "image_bytes": "\(r.bytes)",
                    "report_limit": "\(r.limit)",
                ],
                plain: { withUnsafePointer(to: r) { green_compact_report_print($0) } })
        }
        GreenDiagnostics.refreshCompactReportRoute()
    }

    /// The greenlet's name in a compact report (unnamed greenlets are
    /// "Greenlet-<id>", as Swift names them).
    private static func name(of report: green_compact_report) -> String {
        withUnsafeBytes(of: report.name) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "Greenlet-\(report.id)" : String(decoding: bytes, as: UTF8.self)
        }
    }
}
