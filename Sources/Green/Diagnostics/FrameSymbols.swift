// Names and source lines of code addresses, through the Runtime module's
// symbolizer, looked up in batches and kept for the life of the process
// (code does not move). Names are cheap (the symbol table); a source line
// runs the DWARF line program of the address's compile unit, milliseconds
// each in a large binary, so lines are looked up only for the frames a
// dump shows.
@_spi(Internal) @_spi(Contexts) import Runtime

enum FrameSymbols {
    struct Name: Sendable {
        let function: String
        let image: String?
        /// swift-green's libraries, Swift's runtime and library, the system.
        let isLibrary: Bool
        /// Of those, the runtime's core (Green, the C shims), Swift's and
        /// the system's: not a library above the core (GreenHTTP,
        /// GreenCrawl...), whose frames stand for the user's code where a
        /// greenlet has none of its own (a crawler's worker).
        let isCore: Bool
    }

    struct Line: Sendable {
        let file: String
        let line: Int
    }

    private static let names = Locked<[UInt64: Name]>([:])
    private static let lines = Locked<[UInt64: Line?]>([:])
    private static let images = Locked<ImageMap?>(nil)

    /// The modules of swift-green's own libraries: their frames are the
    /// runtime's, not the user's.
    static let libraryModules: Set<Substring> = ["Green", "GreenTLS", "GreenHTTP", "GreenRedis", "GreenCrawl",
                                                 "GreenPatch", "GreenCompare", "GreenCompareWorkloads",
                                                 "GreenCrawlModels"]

    /// The names of `addresses`, every one.
    static func names(of addresses: Set<UInt64>) -> [UInt64: Name] {
        let known = names.withLock { $0 }
        let missing = addresses.filter { known[$0] == nil }
        guard !missing.isEmpty else { return known }
        var found: [UInt64: Name] = [:]
        let list = Array(missing)
        let frames = symbolicated(list, options: [.useSymbolCache])
        for (i, address) in list.enumerated() {
            let f = i < frames.count ? frames[i] : nil
            guard let f, let s = f.symbol else {
                found[address] = Name(function: "0x" + String(address, radix: 16), image: nil, isLibrary: true, isCore: true)
                continue
            }
            let module = mangledModule(s.rawName)
            // "__": names C reserves for its implementation: the C
            // library's internals, a sanitizer's interceptors linked into
            // the program (C++ ones such as `__tsan::` are mangled:
            // their demangled name tells).
            let isCore = f.isSystem || f.isSwiftThunk || s.rawName.hasPrefix("green_") || s.rawName.hasPrefix("__")
                || s.name.hasPrefix("__")
                // A PLT stub has no symbol of its own: the nearest one
                // before it is the image's `_init` (a signal taken in the
                // stub of clock_gettime named `_init` as the user's code).
                || s.name == "_init" || s.name == "_fini"
                || s.rawName.hasPrefix("swift_") || s.rawName.hasPrefix("ev_")
                || module.map { $0 == "Swift" || $0 == "Green" } ?? false
            let isLibrary = isCore || module.map { libraryModules.contains($0) } ?? false
            found[address] = Name(function: s.name, image: s.imageName, isLibrary: isLibrary, isCore: isCore)
        }
        return names.withLock { table in
            table.merge(found) { a, _ in a }
            return table
        }
    }

    /// The source lines of `addresses` where the binary's debug
    /// information has them.
    static func lines(of addresses: Set<UInt64>) -> [UInt64: Line?] {
        let known = lines.withLock { $0 }
        let missing = addresses.filter { known[$0] == nil }
        guard !missing.isEmpty else { return known }
        var found: [UInt64: Line?] = [:]
        let list = Array(missing)
        let frames = symbolicated(list, options: [.showSourceLocations, .useSymbolCache])
        for (i, address) in list.enumerated() {
            // Line 0: code the compiler made (thunks), no line of source.
            let location = i < frames.count ? frames[i].symbol?.sourceLocation : nil
            found[address] = location.flatMap { $0.line > 0 ? Line(file: $0.path, line: $0.line) : nil }
        }
        return lines.withLock { table in
            table.merge(found) { a, _ in a }
            return table
        }
    }

    /// One symbolicated frame per address, in order.
    private static func symbolicated(_ addresses: [UInt64],
                                     options: Backtrace.SymbolicationOptions) -> [SymbolicatedBacktrace.Frame] {
        let map = images.withLock { map -> ImageMap in
            if let m = map { return m }
            let m = ImageMap.capture()
            map = m
            return m
        }
        let architecture = HostContext.withCurrentContext { $0.architecture }
        let backtrace = Backtrace(architecture: architecture,
                                  frames: addresses.map { RichFrame<UInt64>.programCounter($0) }, images: map)
        return backtrace.symbolicated(with: map, options: options)?.frames ?? []
    }

    /// The module a Swift symbol belongs to: "$s5Green3HubC4park..." is
    /// Green's; "$ss..." the standard library's ("Swift").
    static func mangledModule(_ raw: String) -> Substring? {
        var rest = Substring(raw)
        if rest.hasPrefix("$s") { rest = rest.dropFirst(2) } else if rest.hasPrefix("_$s") { rest = rest.dropFirst(3) } else { return nil }
        if rest.first == "s" { return "Swift" }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard let n = Int(digits), n > 0 else { return nil }
        let name = rest.dropFirst(digits.count).prefix(n)
        return name.count == n ? name : nil
    }
}
