import Foundation

/// The measurements as an SVG: one panel per figure (throughput, wall
/// time, CPU time, peak RSS, memory per task, context switches), one bar
/// per model, each bar labelled with its value, so the models compare at
/// a glance. Memory per task stacks the kernel's share (dark) on the
/// user memory.
enum Chart {
    static let colors = ["greenlets": "#2a9d8f", "threads": "#e9c46a", "processes": "#e76f51"]

    static func svg(workload: String, subtitle: String, _ results: [Measurement]) -> String {
        let panels: [(title: String, unit: String, value: (Measurement) -> Double, better: String)] = [
            ("Throughput", "units/s", { $0.throughput }, "higher is better"),
            ("Wall time", "s", { $0.wallSeconds }, "lower is better"),
            ("CPU time (user + sys)", "s", { $0.userSeconds + $0.systemSeconds }, "lower is better"),
            ("Peak RSS", "MiB", { Double($0.peakRSSBytes) / 1_048_576 }, "lower is better"),
            ("Memory per task", "KiB, user+kernel (dark)", { taskKiB($0).user + taskKiB($0).kernel }, "lower is better"),
            ("Context switches (vol + invol)", "", { Double($0.voluntary + $0.involuntary) }, "lower is better"),
        ]
        let panelWidth = 260.0, barArea = 150.0, top = 70.0
        let width = panelWidth * Double(panels.count) + 20
        let height = top + 55 + barArea + 30
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
        viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif">
        <rect width="100%" height="100%" fill="#ffffff"/>
        <text x="20" y="30" font-size="20" font-weight="bold">\(escape(workload)) on greenlets, threads and processes</text>
        <text x="20" y="52" font-size="13" fill="#555">\(escape(subtitle))</text>

        """
        for (i, panel) in panels.enumerated() {
            let x0 = 20 + Double(i) * panelWidth
            let values = results.map(panel.value)
            var maxValue = max(values.max() ?? 1, 1e-9)
            // Memory per task: a process costs a thousand times a greenlet.
            // A bar over 4x the next is drawn broken, the rest to scale
            // (the next at 80% of the height).
            let memory = panel.title.hasPrefix("Memory per task")
            let second = values.sorted(by: >).dropFirst().first ?? 0
            if memory && second > 0 && maxValue > 4 * second { maxValue = second * 1.25 }
            out += "<text x=\"\(x0)\" y=\"\(top + 14)\" font-size=\"14\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
            out += "<text x=\"\(x0)\" y=\"\(top + 30)\" font-size=\"11\" fill=\"#777\">\(escape(panel.unit.isEmpty ? panel.better : "\(panel.unit), \(panel.better)"))</text>\n"
            let baseY = top + 55 + barArea
            out += "<line x1=\"\(x0)\" y1=\"\(baseY)\" x2=\"\(x0 + panelWidth - 40)\" y2=\"\(baseY)\" stroke=\"#999\"/>\n"
            let barWidth = (panelWidth - 60) / Double(max(results.count, 1))
            for (j, r) in results.enumerated() {
                let broken = values[j] > maxValue
                let h = barArea * min(values[j], maxValue) / maxValue
                let x = x0 + 10 + Double(j) * barWidth
                let color = colors[r.model] ?? "#888"
                var text = label(values[j])
                if memory {
                    // User memory below in the model's colour, the kernel's
                    // share stacked on it, dark.
                    let (user, kernel) = taskKiB(r)
                    let hk = values[j] > 0 ? h * kernel / values[j] : 0
                    out += "<rect x=\"\(fmt(x))\" y=\"\(fmt(baseY - h + hk))\" width=\"\(fmt(barWidth - 8))\" height=\"\(fmt(h - hk))\" fill=\"\(color)\"><title>\(r.model): user \(label(user)) KiB</title></rect>\n"
                    out += "<rect x=\"\(fmt(x))\" y=\"\(fmt(baseY - h))\" width=\"\(fmt(barWidth - 8))\" height=\"\(fmt(hk))\" fill=\"#264653\"><title>\(r.model): kernel \(label(kernel)) KiB</title></rect>\n"
                    text = r.taskUserBytes == nil ? "-" : "\(label(user))+\(label(kernel))"
                    if broken {
                        out += "<rect x=\"\(fmt(x - 2))\" y=\"\(fmt(baseY - h * 0.45))\" width=\"\(fmt(barWidth - 4))\" height=\"6\" fill=\"#ffffff\" transform=\"rotate(-8 \(fmt(x + (barWidth - 8) / 2)) \(fmt(baseY - h * 0.45)))\"/>\n"
                    }
                } else {
                    out += "<rect x=\"\(fmt(x))\" y=\"\(fmt(baseY - h))\" width=\"\(fmt(barWidth - 8))\" height=\"\(fmt(h))\" fill=\"\(color)\"><title>\(r.model): \(label(values[j]))</title></rect>\n"
                }
                out += "<text x=\"\(fmt(x + (barWidth - 8) / 2))\" y=\"\(fmt(baseY - h - 4))\" font-size=\"11\" text-anchor=\"middle\">\(escape(text))</text>\n"
                out += "<text x=\"\(fmt(x + (barWidth - 8) / 2))\" y=\"\(fmt(baseY + 14))\" font-size=\"11\" text-anchor=\"middle\">\(escape(r.model))</text>\n"
            }
        }
        out += "</svg>\n"
        return out
    }

    /// A model's memory per task in KiB, user and kernel (0 where there
    /// is no figure; a negative kernel figure, noise, draws as 0).
    static func taskKiB(_ r: Measurement) -> (user: Double, kernel: Double) {
        (max(r.taskUserBytes ?? 0, 0) / 1024, max(r.taskKernelBytes ?? 0, 0) / 1024)
    }

    static func label(_ v: Double) -> String {
        if v >= 100_000 { return String(format: "%.0fk", v / 1000) }
        if v >= 100 { return String(format: "%.0f", v) }
        if v >= 10 { return String(format: "%.1f", v) }
        return String(format: "%.3g", v)
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
