import Foundation
import XCTest
import GreenTestSupport

/// The libraries are layers that only look down: Green at the bottom;
/// GreenTLS, GreenRedis, GreenPatch and the adapter layer's model core
/// (GreenCompare) each on Green alone; GreenHTTP on GreenTLS; GreenCrawl on
/// GreenHTTP and GreenRedis; the workloads on the model core and GreenHTTP;
/// the model crawler (GreenCrawlModels) on GreenCrawl and the model core.
/// A library may name, in Package.swift and in its imports, only the
/// libraries below it in its own stack (and C shims and outside packages):
/// GreenCrawl and GreenCompare are side by side, neither may use the other.
/// This reads both.
final class LayerTests: XCTestCase {
    /// Each library and the libraries of this package it may use.
    static let below: [String: Set<String>] = [
        "Green": [],
        "GreenTLS": ["Green"],
        "GreenRedis": ["Green"],
        "GreenPatch": ["Green"],
        "GreenCompare": ["Green"],
        "GreenHTTP": ["Green", "GreenTLS"],
        "GreenCrawl": ["Green", "GreenTLS", "GreenHTTP", "GreenRedis"],
        "GreenCompareWorkloads": ["Green", "GreenCompare", "GreenTLS", "GreenHTTP"],
        "GreenCrawlModels": ["Green", "GreenCompare", "GreenTLS", "GreenHTTP", "GreenRedis", "GreenCrawl"],
    ]

    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Each library's dependencies on the package's own libraries, as
    /// declared in Package.swift.
    static func declaredDependencies(manifest: String) throws -> [String: Set<String>] {
        let pattern = try NSRegularExpression(
            pattern: #"\.(?:target|testTarget|executableTarget)\(\s*name:\s*"(\w+)",\s*dependencies:\s*\[(.*?)\]\s*[,)]"#,
            options: [.dotMatchesLineSeparators])
        var out: [String: Set<String>] = [:]
        let text = manifest as NSString
        for m in pattern.matches(in: manifest, range: NSRange(location: 0, length: text.length)) {
            let name = text.substring(with: m.range(at: 1))
            let list = text.substring(with: m.range(at: 2))
            let quoted = try NSRegularExpression(pattern: #"^\s*"(\w+)""#, options: [.anchorsMatchLines])
            // Plain names only (`.product(...)` entries are outside packages).
            var deps = Set<String>()
            for item in list.split(separator: ",") {
                let s = String(item)
                if let q = quoted.firstMatch(in: s, range: NSRange(location: 0, length: (s as NSString).length)) {
                    deps.insert((s as NSString).substring(with: q.range(at: 1)))
                }
            }
            out[name] = deps
        }
        return out
    }

    /// The package's libraries each Swift file of `target` imports.
    static func imports(of target: String) throws -> [(file: String, module: String)] {
        let dir = root.appendingPathComponent("Sources").appendingPathComponent(target)
        guard let files = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { return [] }
        var out: [(String, String)] = []
        for case let url as URL in files where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                // `import X`, `@testable import X`, `@_spi(S) import X`.
                guard let i = words.firstIndex(of: "import"), i + 1 < words.count else { continue }
                if i > 0 && !words[..<i].allSatisfy({ $0.hasPrefix("@") }) { continue }
                out.append((url.lastPathComponent, String(words[i + 1])))
            }
        }
        return out
    }

    /// The rule, on a manifest and on imports given as data, so that a test
    /// can show that it fails when broken.
    static func violations(declared: [String: Set<String>],
                           imports: [String: [(file: String, module: String)]]) -> [String] {
        var out: [String] = []
        for (library, allowed) in below.sorted(by: { $0.key < $1.key }) {
            guard let deps = declared[library] else {
                out.append("\(library): not found in Package.swift")
                continue
            }
            for d in deps.sorted() where below[d] != nil && !allowed.contains(d) {
                out.append("\(library) depends on \(d) in Package.swift")
            }
            for (file, module) in imports[library] ?? []
            where below[module] != nil && module != library && !allowed.contains(module) {
                out.append("\(library) imports \(module) in \(file)")
            }
        }
        return out
    }

    func testLibrariesOnlyLookDown() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let declared = try Self.declaredDependencies(manifest: manifest)
        var imports: [String: [(file: String, module: String)]] = [:]
        for library in Self.below.keys { imports[library] = try Self.imports(of: library) }
        XCTAssertEqual(declared["GreenCrawl"]?.contains("GreenHTTP"), true, "the manifest was read")
        XCTAssertFalse(imports["GreenCrawl", default: []].isEmpty, "the sources were read")
        XCTAssertEqual(Self.violations(declared: declared, imports: imports), [])
    }

    /// The core's tests build with Green alone: GreenTests names no library
    /// of the package but Green (with its C shim) and the support target,
    /// the support target and the executables the tests run (the probe,
    /// the main-hub example) need Green alone; no OpenSSL, gumbo, libxml2
    /// or Redis client is built for them.
    func testTheCoreTestsNeedGreenAlone() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let declared = try Self.declaredDependencies(manifest: manifest)
        let allowed: [String: Set<String>] = [
            "GreenTests": ["Green", "CGreenContext", "GreenTestSupport", "GreenProbe", "MainHub"],
            "GreenTestSupport": ["Green", "CGreenContext"],
            "GreenProbe": ["Green"],
            "MainHub": ["Green"],
        ]
        for (target, names) in allowed.sorted(by: { $0.key < $1.key }) {
            let deps = try XCTUnwrap(declared[target], "\(target) in Package.swift")
            XCTAssertTrue(deps.isSubset(of: names), "\(target) depends on \(deps.subtracting(names).sorted())")
        }
    }

    func testTheRuleCatchesASidewaysDependency() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        var declared = try Self.declaredDependencies(manifest: manifest)
        var imports: [String: [(file: String, module: String)]] = [:]
        for library in Self.below.keys { imports[library] = try Self.imports(of: library) }
        // GreenCrawl importing GreenCompare again, as it once did.
        imports["GreenCrawl", default: []].append((file: "ModelCrawler.swift", module: "GreenCompare"))
        XCTAssertEqual(Self.violations(declared: declared, imports: imports),
                       ["GreenCrawl imports GreenCompare in ModelCrawler.swift"])
        imports["GreenCrawl"]!.removeLast()
        declared["GreenCompare", default: []].insert("GreenHTTP")
        XCTAssertEqual(Self.violations(declared: declared, imports: imports),
                       ["GreenCompare depends on GreenHTTP in Package.swift"])
    }
}
