// libFuzzer target: link extraction from arbitrary bytes (gumbo, the
// arena, the walk, resolution). Built by `make fuzz` only.
import Glibc
import GreenCrawl

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLinks(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let html = Array(UnsafeBufferPointer(start: data, count: size))
    let links = LinkExtractor.linkStrings(in: html, pageURL: "http://example.com/dir/page.html")
    check(Set(links).count == links.count, "duplicate links")
    for l in links {
        check(l.hasPrefix("http://") || l.hasPrefix("https://"), "not an http(s) link: \(l.debugDescription)")
        check(!l.utf8.contains(UInt8(ascii: "#")), "a fragment survived: \(l.debugDescription)")
    }
    return 0
}

// SwiftPM names an executable's entry point FuzzLinks_main; it hands the
// process to libFuzzer's driver, which calls the function above.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

@_cdecl("FuzzLinks_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzLinks(data, size) }
}

/// Stops the run with the message (release builds drop precondition's).
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    guard !condition else { return }
    var text = Array(("fuzz check failed: " + message() + "\n").utf8)
    _ = write(2, &text, text.count)
    abort()
}
