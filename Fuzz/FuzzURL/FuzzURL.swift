// libFuzzer target: the crawler's byte-level link resolution and its
// "already normalized" test, each checked against Foundation's URL plus
// URLNormalizer. Built by `make fuzz` only.
import FuzzSupport
@_spi(Fuzzing) import GreenCrawl

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzURL(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // "href \0 base path": the base is an absolute URL on a fixed host.
    let split = bytes.firstIndex(of: 0) ?? bytes.count
    let href = String(decoding: bytes[..<split], as: UTF8.self)
    let rest = split < bytes.count ? bytes[(split + 1)...] : []
    let base = "http://example.com/" + String(decoding: rest, as: UTF8.self)
    let (quick, careful) = CrawlFuzzing.resolve(href: href, base: base)
    if let quick {
        check(quick == careful, "quick resolution of \(href.debugDescription) against \(base.debugDescription) is \(quick.debugDescription), Foundation says \(String(describing: careful).debugDescription)")
    }
    for candidate in [href, base] {
        let (looks, normalizer) = CrawlFuzzing.normalized(candidate)
        if looks {
            check(normalizer == candidate, "\(candidate.debugDescription) looked normalized, the normalizer says \(String(describing: normalizer).debugDescription)")
        }
    }
    return 0
}

// SwiftPM names an executable's entry point FuzzURL_main; it hands the
// process to libFuzzer's driver, which calls the function above.
@_cdecl("FuzzURL_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzURL(data, size) }
}
