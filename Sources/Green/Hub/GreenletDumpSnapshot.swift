
extension GreenletDump {
    /// Every hub's greenlets at one moment, with their backtraces: grouped
    /// (`groups`, `groupedText()`) or one by one (`greenlets`,
    /// `fullText()`), and as JSON. A value: any thread.
    public struct Snapshot: Sendable {
        /// One frame of a backtrace, symbolized.
        public struct Frame: Sendable, Hashable, CustomStringConvertible {
            /// The function, demangled; the address in hex where no
            /// symbol is known.
            public let function: String
            /// The source file, where the binary has debug information
            /// for the address and the dump looked it up: for every frame
            /// of a full snapshot, for the first frames of each group of a
            /// grouped one (looking lines up is the slow part of a dump).
            public let file: String?
            /// The line in `file`.
            public let line: Int?
            /// The binary or library the code is in.
            public let image: String?
            /// Code of swift-green's libraries, of Swift's runtime and
            /// standard library, or of the system: not the user's.
            public let isLibrary: Bool
            /// Of those, code of swift-green's core (`Green`), of Swift's or
            /// of the system's: where no frame is the user's (a crawler's
            /// worker), the first frame that is not the core's (the
            /// library's code that waits) stands for it.
            let isCore: Bool

            /// "function at file:line" (or "function in image").
            public var description: String {
                if let file, let line { return "\(function) at \(file):\(line)" }
                if let image { return "\(function) in \(image)" }
                return function
            }
        }

        /// One greenlet.
        public struct Greenlet: Sendable {
            /// The hub (the number `GreenletDump` lists it under).
            public let hub: Int
            /// Its id (process-unique).
            public let id: UInt64
            /// Its name (`Greenlet-<id>` unless one was given).
            public let name: String
            /// Whether it keeps its stack on the heap while parked.
            public let isCompact: Bool
            /// "parked", "ready", "running", "not started" or "finished".
            public let state: String
            /// What a parked greenlet waits on.
            public let waitingOn: String?
            /// How long a parked greenlet has waited so far.
            public let waitMilliseconds: Int?
            /// The name of the greenlet that spawned it (nil for a
            /// thread's main greenlet).
            public let spawnedBy: String?
            /// Innermost first; empty where it could not be told (not
            /// started).
            public let frames: [Frame]

            /// The first frame of user code: the first that is not a
            /// library's, else the first outside swift-green's core.
            public var userFrame: Frame? { GreenletDump.userFrame(in: frames) }
        }

        /// Greenlets with the same state, wait and frames of user code
        /// (the run of them from the first; without any, the run of a
        /// library's frames above the core).
        public struct Group: Sendable {
            /// How many greenlets it holds.
            public let count: Int
            /// Their state (see `Greenlet.state`).
            public let state: String
            /// What they wait on, if parked.
            public let waitingOn: String?
            /// The shortest and longest wait in the group (parked ones).
            public let waitMilliseconds: ClosedRange<Int>?
            /// The names of its greenlets that were given one, the first few.
            public let names: [String]
            /// How many of its greenlets are compact.
            public let compactCount: Int
            /// Its frames of user code (without any, a library's frames
            /// above the core; else the first frame), innermost first.
            public let frames: [Frame]
        }

        /// A hub that did not answer in time: its thread is busy without
        /// yielding (the blocked-hub monitor's report says where).
        public struct SilentHub: Sendable {
            /// The hub's number.
            public let hub: Int
            /// Its thread (pthread id).
            public let thread: UInt
            /// How long the dump waited for it.
            public let timeout: Double
        }

        /// What a hub captured, before symbols were looked up.
        struct Captured: Sendable {
            let hub: Int
            let id: UInt64
            let name: String
            let isCompact: Bool
            let state: String
            let waitingOn: String?
            let waitMilliseconds: Int?
            let spawnedBy: String?
            let frames: FrameAddresses
        }

        /// Every greenlet, hub by hub: each hub's main greenlet first, then
        /// its spawned ones, newest first.
        public let greenlets: [Greenlet]
        /// The hubs that did not answer.
        public let silentHubs: [SilentHub]
        /// Largest first.
        public let groups: [Group]

        /// How many frames, from the first of user code on, a grouped dump
        /// shows for each group with their source lines.
        public static let framesPerGroup = 2

        /// Symbols for every captured address; source lines for every
        /// frame when `full`, else for each group's first frames of user
        /// code.
        init(captured: [Captured], silentHubs: [SilentHub], full: Bool) {
            self.silentHubs = silentHubs
            var all = Set<UInt64>()
            for c in captured { all.formUnion(c.frames) }
            let names = FrameSymbols.names(of: all)
            func isLibrary(_ a: UInt64) -> Bool { names[a]?.isLibrary ?? true }
            func isCore(_ a: UInt64) -> Bool { names[a]?.isCore ?? true }
            // Greenlets parked at the same place have the same addresses:
            // group on them, from the first frame of user code on.
            struct Key: Hashable {
                let state: String
                let waitingOn: String?
                let frames: ArraySlice<UInt64>
            }
            var order: [Key] = []
            var members: [Key: [Int]] = [:]
            for (i, c) in captured.enumerated() {
                // The run of user frames (or, without any, of a library's
                // frames above the core) from its first: the frames below
                // it are the runtime's way in, the same for every greenlet
                // (and, on a makecontext stack, junk past its entry).
                let frames: ArraySlice<UInt64>
                if let user = c.frames.firstIndex(where: { !isLibrary($0) }) {
                    frames = c.frames[user..<(c.frames[user...].firstIndex(where: isLibrary) ?? c.frames.endIndex)]
                } else if let library = c.frames.firstIndex(where: { !isCore($0) }) {
                    frames = c.frames[library..<(c.frames[library...].firstIndex(where: isCore) ?? c.frames.endIndex)]
                } else {
                    frames = c.frames.prefix(1)
                }
                let key = Key(state: c.state, waitingOn: c.waitingOn, frames: frames)
                if members[key] == nil { order.append(key) }
                members[key, default: []].append(i)
            }
            var wanted = Set<UInt64>()
            if full {
                wanted = all
            } else {
                for key in order { wanted.formUnion(Self.shown(key.frames, Self.framesPerGroup, isLibrary, isCore)) }
            }
            let lines = FrameSymbols.lines(of: wanted)
            func frame(_ a: UInt64) -> Frame {
                let n = names[a]
                let l = wanted.contains(a) ? lines[a] ?? nil : nil
                return Frame(function: n?.function ?? "0x" + String(a, radix: 16), file: l?.file, line: l?.line,
                             image: n?.image, isLibrary: n?.isLibrary ?? true, isCore: n?.isCore ?? true)
            }
            let list = captured.map { c in
                Greenlet(hub: c.hub, id: c.id, name: c.name, isCompact: c.isCompact, state: c.state,
                         waitingOn: c.waitingOn, waitMilliseconds: c.waitMilliseconds,
                         spawnedBy: c.spawnedBy, frames: c.frames.map(frame))
            }
            greenlets = list
            groups = order.map { key -> Group in
                let gs = members[key]!.map { list[$0] }
                let waits = gs.compactMap(\.waitMilliseconds)
                let named = gs.map(\.name).filter { !$0.hasPrefix("Greenlet-") }
                return Group(count: gs.count, state: key.state, waitingOn: key.waitingOn,
                             waitMilliseconds: waits.isEmpty ? nil : waits.min()!...waits.max()!,
                             names: Array(named.prefix(Self.namesPerGroup)),
                             compactCount: gs.filter(\.isCompact).count, frames: key.frames.map(frame))
            }.sorted { a, b in
                a.count != b.count ? a.count > b.count
                    : (a.waitMilliseconds?.upperBound ?? 0) > (b.waitMilliseconds?.upperBound ?? 0)
            }
        }

        /// The frames a group shows: its first `count` frames of user
        /// code; without any, its first `count` frames outside the core
        /// (a library's code that waits); else its first frame.
        static func shown<C: Collection>(_ frames: C, _ count: Int, _ isLibrary: (C.Element) -> Bool,
                                         _ isCore: (C.Element) -> Bool) -> [C.Element] {
            let user = frames.filter { !isLibrary($0) }.prefix(count)
            if !user.isEmpty { return Array(user) }
            let library = frames.filter { !isCore($0) }.prefix(count)
            return library.isEmpty ? Array(frames.prefix(1)) : Array(library)
        }

        /// At most this many names are kept per group.
        static let namesPerGroup = 3

        /// One entry per group, largest first: a line with the count,
        /// state, wait and the range of wait times, the names given, then
        /// the group's frames of user code (at most `frames`; its first
        /// frame if it has none), each with its source line where known.
        public func groupedText(frames: Int = Snapshot.framesPerGroup) -> String {
            var out = "swift-green: \(greenlets.count) greenlets in \(groups.count) groups"
                + " (GreenletDump.text(full: true) lists each)\n"
            for g in groups {
                var line = "\(g.count) \(g.state)"
                if let w = g.waitingOn { line += " on \(w)" }
                if let r = g.waitMilliseconds {
                    line += r.lowerBound == r.upperBound ? " for \(r.lowerBound) ms" : " for \(r.lowerBound)-\(r.upperBound) ms"
                }
                if g.compactCount > 0 { line += g.compactCount == g.count ? ", compact" : ", \(g.compactCount) compact" }
                if !g.names.isEmpty {
                    let more = g.count - g.names.count
                    line += ": " + g.names.joined(separator: ", ") + (more > 0 ? " and \(more) more" : "")
                }
                out += line + "\n"
                for f in Self.shown(g.frames, frames, \.isLibrary, \.isCore) { out += "    \(f)\n" }
            }
            out += silentHubsText()
            return out
        }

        /// Every greenlet, hub by hub: its state, wait, parent, and every
        /// frame of its backtrace.
        public func fullText() -> String {
            var out = "swift-green: greenlet dump (\(greenlets.count) greenlets)\n"
            var hub = -1
            for g in greenlets {
                if g.hub != hub {
                    hub = g.hub
                    out += "hub \(hub):\n"
                }
                var line = "  \(g.name): \(g.state)"
                if let w = g.waitingOn { line += " on \(w)" }
                if let ms = g.waitMilliseconds { line += " for \(ms) ms" }
                if g.isCompact { line += " (compact)" }
                if let p = g.spawnedBy { line += ", spawned by \(p)" }
                out += line + "\n"
                for f in g.frames { out += "      \(f)\n" }
            }
            out += silentHubsText()
            return out
        }

        private func silentHubsText() -> String {
            silentHubs.map {
                "hub \($0.hub) (thread \(String($0.thread, radix: 16))): no answer within \($0.timeout) s:"
                    + " the hub is blocked; see the monitor's report\n"
            }.joined()
        }

        /// `{"greenlets": N, "groups": [...], "silent_hubs": [...]}`, and
        /// `"list"` with every greenlet when `full`. Frames as
        /// `{"function", "file", "line", "image", "library"}`.
        public func json(full: Bool = false) -> String {
            var w = JSONWriter()
            w.open("{")
            w.key("greenlets"); w.number(greenlets.count)
            w.key("groups"); w.open("[")
            for g in groups {
                w.open("{")
                w.key("count"); w.number(g.count)
                w.key("state"); w.string(g.state)
                w.key("waiting_on"); w.optionalString(g.waitingOn)
                w.key("wait_ms_min"); w.optionalNumber(g.waitMilliseconds?.lowerBound)
                w.key("wait_ms_max"); w.optionalNumber(g.waitMilliseconds?.upperBound)
                w.key("compact"); w.number(g.compactCount)
                w.key("names"); w.open("[")
                for n in g.names { w.string(n) }
                w.close("]")
                w.key("frames"); frames(g.frames, &w)
                w.close("}")
            }
            w.close("]")
            w.key("silent_hubs"); w.open("[")
            for s in silentHubs { w.number(s.hub) }
            w.close("]")
            if full {
                w.key("list"); w.open("[")
                for g in greenlets {
                    w.open("{")
                    w.key("hub"); w.number(g.hub)
                    w.key("id"); w.number(Int(g.id))
                    w.key("name"); w.string(g.name)
                    w.key("state"); w.string(g.state)
                    w.key("compact"); w.bool(g.isCompact)
                    w.key("waiting_on"); w.optionalString(g.waitingOn)
                    w.key("wait_ms"); w.optionalNumber(g.waitMilliseconds)
                    w.key("spawned_by"); w.optionalString(g.spawnedBy)
                    w.key("frames"); frames(g.frames, &w)
                    w.close("}")
                }
                w.close("]")
            }
            w.close("}")
            return w.text + "\n"
        }

        private func frames(_ frames: [Frame], _ w: inout JSONWriter) {
            w.open("[")
            for f in frames {
                w.open("{")
                w.key("function"); w.string(f.function)
                w.key("file"); w.optionalString(f.file)
                w.key("line"); w.optionalNumber(f.line)
                w.key("image"); w.optionalString(f.image)
                w.key("library"); w.bool(f.isLibrary)
                w.close("}")
            }
            w.close("]")
        }
    }

    /// The first frame of user code: the first that is not a library's,
    /// else the first outside the core.
    static func userFrame(in frames: [Snapshot.Frame]) -> Snapshot.Frame? {
        frames.first { !$0.isLibrary } ?? frames.first { !$0.isCore }
    }
}

/// A small JSON writer for the dump (Green does without Foundation).
struct JSONWriter {
    private(set) var text = ""
    private var needsComma = false

    private mutating func separate() {
        if needsComma { text += "," }
        needsComma = true
    }

    mutating func open(_ bracket: String) {
        separate()
        text += bracket
        needsComma = false
    }

    mutating func close(_ bracket: String) {
        text += bracket
        needsComma = true
    }

    mutating func key(_ k: String) {
        separate()
        text += "\"\(k)\":"
        needsComma = false
    }

    mutating func number(_ n: Int) { separate(); text += String(n) }
    mutating func bool(_ b: Bool) { separate(); text += b ? "true" : "false" }
    mutating func optionalNumber(_ n: Int?) { if let n { number(n) } else { separate(); text += "null" } }
    mutating func optionalString(_ s: String?) { if let s { string(s) } else { separate(); text += "null" } }

    mutating func string(_ s: String) {
        separate()
        text += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(u)
            }
        }
        text += "\""
    }
}
