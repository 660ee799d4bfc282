// libFuzzer target: link extraction from arbitrary bytes (gumbo, the
// arena, the walk, resolution). Built by `make fuzz` only.
import FuzzSupport
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
@_cdecl("FuzzLinks_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzLinks(data, size) }
}
