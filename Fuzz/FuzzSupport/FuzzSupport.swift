// What the libFuzzer targets share: handing the process to libFuzzer's
// driver, and the check that stops a run. Built by `make fuzz` only.
import Glibc

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

/// Hands the process to libFuzzer's driver, which calls `test` with each
/// input: a target's entry point (SwiftPM names it `<target>_main`).
public func runFuzzer(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ test: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, test)
}

/// Stops the run with the message (release builds drop precondition's).
public func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    guard !condition else { return }
    var text = Array(("fuzz check failed: " + message() + "\n").utf8)
    _ = write(2, &text, text.count)
    abort()
}
