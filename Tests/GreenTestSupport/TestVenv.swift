import Foundation
import Green

/// The Python of the test virtual environment (.venv-tests in the package
/// root, made by `make test-venv`), for tools the tests check our output
/// with.
public enum TestVenv {
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `.venv-tests/bin/<tool>` with `arguments` and waits (at most
    /// 60 s). Throws when the environment is missing, saying how to make it.
    public static func run(_ arguments: [String], tool: String = "python") throws -> (status: Int32, stdout: String, stderr: String) {
        let executable = root.appendingPathComponent(".venv-tests/bin/\(tool)").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestError("\(executable) is missing: run `make test-venv` (a Python venv with warcio) in \(root.path)")
        }
        let child = try Subprocess([executable] + arguments, stdin: .null, stdout: .pipe, stderr: .pipe)
        let output = try withTimeout(60) { try child.communicate() }
        guard case .exited(let code)? = child.status else {
            throw TestError("\(tool) \(arguments.first ?? "") did not exit normally: \(String(describing: child.status))")
        }
        return (code, String(decoding: output.stdout, as: UTF8.self), String(decoding: output.stderr, as: UTF8.self))
    }
}
