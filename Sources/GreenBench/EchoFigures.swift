// TCP echo figures: the package's own echo-server, loaded by its own
// echo-load client in a separate process, both taken from the directory
// green-bench runs from (build all three: see the Makefile's bench target).
import Foundation

enum EchoBench {
    struct Missing: Error, CustomStringConvertible {
        let name: String
        var description: String { "\(name) not found next to green-bench: build it with swift build -c release --product \(name)" }
    }

    static func executable(_ name: String) throws -> URL {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let url = dir.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else { throw Missing(name: name) }
        return url
    }

    /// Round trips per second of `echo-load` (100 connections, 64 bytes)
    /// against `echo-server --workers hubs --work-kib workKib`.
    static func roundTripsPerSecond(hubs: Int, workKib: Int, seconds: Double) throws -> Double {
        let server = Process()
        server.executableURL = try executable("echo-server")
        server.arguments = ["--port", "0", "--workers", "\(hubs)", "--work-kib", "\(workKib)"]
        let serverOut = Pipe()
        server.standardOutput = serverOut
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        // "listening on 127.0.0.1:PORT (N hubs)"
        var line = Data()
        let handle = serverOut.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let addressPart = text.split(separator: " ").dropFirst(2).first,
              let port = addressPart.split(separator: ":").last.flatMap({ UInt16($0) }) else {
            throw Missing(name: "echo-server's port (it printed: \(text))")
        }
        let load = Process()
        load.executableURL = try executable("echo-load")
        load.arguments = ["--port", "\(port)", "--connections", "100", "--size", "64",
                          "--seconds", "\(seconds)", "--json"]
        let loadOut = Pipe()
        load.standardOutput = loadOut
        try load.run()
        let data = loadOut.fileHandleForReading.readDataToEndOfFile()
        load.waitUntilExit()
        guard load.terminationStatus == 0,
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let rate = object["roundtrips_per_s"] as? Double ?? (object["roundtrips_per_s"] as? Int).map(Double.init)
        else {
            throw Missing(name: "echo-load's figure (it printed: \(String(decoding: data, as: UTF8.self)))")
        }
        return rate
    }
}
