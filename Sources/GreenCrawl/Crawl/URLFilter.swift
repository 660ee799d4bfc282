import Glibc

/// Which URLs a crawl follows, by regular expressions on the whole URL
/// (POSIX extended syntax, as `wget --accept-regex` reads them by
/// default; matched anywhere in the URL unless anchored with ^ or $): a
/// URL is followed when it matches one of `include` (or `include` is
/// empty) and none of `exclude`.
final class URLFilter {
    private let include: [UnsafeMutablePointer<regex_t>]
    private let exclude: [UnsafeMutablePointer<regex_t>]

    /// Throws `CrawlError` naming a pattern that does not compile, with
    /// the reason regcomp gives.
    init(include: [String], exclude: [String]) throws {
        var compiled: [UnsafeMutablePointer<regex_t>] = []
        func compile(_ pattern: String, _ flag: String) throws -> UnsafeMutablePointer<regex_t> {
            let re = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
            let rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB)
            guard rc == 0 else {
                var message = [CChar](repeating: 0, count: 256)
                regerror(rc, re, &message, message.count)
                let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                re.deallocate()
                compiled.forEach { regfree($0); $0.deallocate() }
                throw CrawlError(message: "\(flag) \"\(pattern)\": \(reason)")
            }
            compiled.append(re)
            return re
        }
        self.include = try include.map { try compile($0, "--include") }
        self.exclude = try exclude.map { try compile($0, "--exclude") }
    }

    deinit {
        for re in include + exclude {
            regfree(re)
            re.deallocate()
        }
    }

    var isEmpty: Bool { include.isEmpty && exclude.isEmpty }

    func allows(_ url: String) -> Bool {
        if !include.isEmpty && !include.contains(where: { regexec($0, url, 0, nil, 0) == 0 }) { return false }
        return !exclude.contains { regexec($0, url, 0, nil, 0) == 0 }
    }
}
