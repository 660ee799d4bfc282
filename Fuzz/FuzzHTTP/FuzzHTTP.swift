// libFuzzer target: HTTP request and response parsing (GreenHTTP over
// http_parser), and the client's quick URL reading against Foundation's.
// Built by `make fuzz` only (GREEN_FUZZ=1, -sanitize=fuzzer).
import FuzzSupport
@_spi(Fuzzing) import GreenHTTP

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = HTTPLimits(maxHeaderBytes: 4096, maxHeaderCount: 16, maxBodyBytes: 65536)
    let body = Array(bytes.dropFirst())
    if bytes[0] & 1 == 0 {
        if let requests = try? HTTPParsing.requests(in: body, limits: limits) {
            for r in requests {
                check(r.headers.count <= limits.maxHeaderCount, "header limit not applied")
                check(r.body.count <= limits.maxBodyBytes, "body limit not applied")
            }
        }
    } else {
        if let responses = try? HTTPParsing.responses(in: body, limits: limits) {
            for r in responses {
                check(r.headers.count <= limits.maxHeaderCount, "header limit not applied")
                check(r.body.count <= limits.maxBodyBytes, "body limit not applied")
            }
        }
    }
    // The same bytes as a URL: the quick reading must agree with
    // Foundation's whenever both accept it.
    let text = String(decoding: body, as: UTF8.self)
    let (quick, careful) = HTTPFuzzing.requestURL(text)
    if let quick, let careful {
        check(quick == careful, "RequestURL disagrees with Foundation on \(text.debugDescription): \(quick) vs \(careful)")
    }
    return 0
}

// SwiftPM names an executable's entry point FuzzHTTP_main; it hands the
// process to libFuzzer's driver, which calls the function above.
@_cdecl("FuzzHTTP_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzHTTP(data, size) }
}
