import CLibXML2
import Foundation

/// Links of one HTML document, found by libxml2's HTML push parser as the
/// bytes arrive: feed the body chunk by chunk (decompressed), then
/// `finish`. No tree is built and no byte of the page is kept, only the
/// link values, so memory does not grow with the page; libxml2 recovers
/// from any markup and never touches the network.
///
/// Found: `<a href>`, `<area href>`, `<iframe src>` and `<frame src>`,
/// resolved against the first `<base href>` (wherever it stands, as a
/// browser does) or the page's URL, normalized, in document order,
/// without duplicates. Unless `followNofollow`, a link whose `rel` holds
/// `nofollow` is dropped, and a `<meta name=robots>` saying `nofollow` or
/// `none` drops them all. The charset is the HTTP header's when given,
/// else the document's `<meta charset>` or `http-equiv`, else UTF-8
/// (ISO-8859-1 when the bytes are not UTF-8); values come out as UTF-8.
///
/// Not thread-safe: one thread at a time, which may change between calls
/// when the hand-over orders them (a `ThreadPool.run` does).
public final class HTMLLinkParser {
    private let pageURL: String
    private let followNofollow: Bool
    /// The HTTP header's charset; otherwise the prescan's.
    private let headerCharset: String?
    private let links: UnsafeMutablePointer<green_html_links>
    /// Made once the charset is known (after `prescanBytes`, or at the end).
    private var context: htmlParserCtxtPtr?
    /// For a page not in UTF-8: libxml2 is given UTF-8, converted here.
    private var decoder: CharsetDecoder?
    /// Bytes not given to libxml2 yet: the document's start (as it came)
    /// until the charset is known, then (in UTF-8) at most the tail of the
    /// last chunk (see `push`).
    private var pending: [UInt8] = []
    private var fed = 0
    private var finished = false

    /// How much of the document's start is searched for a `<meta>`
    /// charset, as browsers prescan it.
    static let prescanBytes = 1024
    /// A held-back tail longer than this is given to libxml2 anyway.
    static let holdBackLimit = 256 * 1024

    public init(pageURL: String, charset: String? = nil, followNofollow: Bool = false) {
        _ = LibXML2.ready
        self.pageURL = pageURL
        self.followNofollow = followNofollow
        headerCharset = charset
        links = .allocate(capacity: 1)
        links.initialize(to: green_html_links())
    }

    deinit {
        if let context { green_html_free(context) }
        free(links.pointee.bytes)
        links.deallocate()
    }

    /// Parses the next bytes of the document.
    public func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !finished, !bytes.isEmpty else { return }
        fed += bytes.count
        if context == nil {
            pending.append(contentsOf: bytes)
            // A byte-order mark needs 3 bytes, the prescan 1,024.
            guard pending.count >= (headerCharset == nil ? HTMLLinkParser.prescanBytes : 3) else { return }
            start()
            let all = pending
            pending = []
            all.withUnsafeBytes { push($0) }
        } else if let decoder {
            decoder.convert(bytes).withUnsafeBytes { push($0) }
        } else {
            push(bytes)
        }
    }

    public func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feed($0) }
    }

    /// `feed(last)` then `finish`, in one step: the last bytes go to
    /// libxml2 in the call that ends the document, which then reads them
    /// without looking ahead for each tag's end (a page given whole this
    /// way parses 10-20% faster than in pieces).
    public func finish(last: UnsafeRawBufferPointer, truncated: Bool = false) throws -> [String] {
        if truncated || finished {
            feed(last)
            return try finish(truncated: truncated)
        }
        fed += last.count
        if context != nil, let decoder {
            pending.append(contentsOf: decoder.convert(last))
        } else {
            pending.append(contentsOf: last)
        }
        return try finish()
    }

    /// Ends the document and returns its links. `truncated`: the body was
    /// cut short (a size limit), so an unfinished tag at its end is
    /// dropped rather than read as if the document ended there. Throws
    /// `LinkExtractionError` when the parser gave up before the end (a
    /// value over libxml2's limits, no memory): the links found before
    /// that point are in the error.
    public func finish(truncated: Bool = false) throws -> [String] {
        precondition(!finished, "HTMLLinkParser.finish called twice")
        finished = true
        if context == nil {
            start()
            if truncated {
                // Hold back an unfinished tag at the cut, as `push` does.
                let all = pending
                pending = []
                all.withUnsafeBytes { push($0) }
            }
        }
        guard let context else {
            throw LinkExtractionError(url: pageURL, bytesParsed: 0, reason: "libxml2 could not make a parser", links: [])
        }
        var halted = green_html_halted(context) != 0
        if !halted && !truncated {
            // The rest in the call that ends the document (see
            // `finish(last:)`), with a sequence the page's end cut short.
            if let decoder { pending += decoder.convert(UnsafeRawBufferPointer(start: nil, count: 0), final: true) }
            let tail = pending
            pending = []
            tail.withUnsafeBytes { give($0, terminate: true) }
            halted = green_html_stopped(context) != 0
        }
        let found = resolve()
        if halted || links.pointee.out_of_memory != 0 {
            let reason = links.pointee.out_of_memory != 0 ? "out of memory"
                : green_html_last_error(context).map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) }
                    ?? "libxml2 stopped"
            throw LinkExtractionError(url: pageURL, bytesParsed: fed, reason: reason, links: found)
        }
        return found
    }

    /// Makes the parser once the charset is known: a byte-order mark,
    /// else the header's, else the prescan's, as browsers choose. libxml2
    /// always reads UTF-8: another charset is converted here first (by
    /// iconv; a name iconv does not know is read as UTF-8). In UTF-8, bytes
    /// that are not UTF-8 are read as ISO-8859-1 (libxml2's fallback);
    /// left to itself, libxml2 2.9's push parser would read an undeclared
    /// page as ISO-8859-1. `pending` (the page's start as it came) is
    /// converted with it.
    private func start() {
        let found = pending.withUnsafeBytes { bytes -> String? in
            if let bom = CharsetDecoder.byteOrderMark(bytes) { return CharsetDecoder.effectiveCharset(bom, fromMeta: false) }
            if let headerCharset { return CharsetDecoder.effectiveCharset(headerCharset, fromMeta: false) }
            return CharsetDecoder.effectiveCharset(CharsetPrescan.charset(in: bytes), fromMeta: true)
        }
        decoder = found.flatMap { CharsetDecoder(charset: $0) }
        if let decoder { pending = pending.withUnsafeBytes { decoder.convert($0) } }
        context = green_html_push_parser(links, "UTF-8")
    }

    /// Gives `bytes` to libxml2, holding back a tail that starts with a
    /// `<` not yet closed by a `>`. libxml2 2.9's push parser loses the rest
    /// of the document when a chunk ends inside the end tag of a script or
    /// style (`...</scr` | `ipt>`), so no chunk it gets ends inside a tag.
    private func push(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        if !pending.isEmpty {
            // Complete the held-back tag with this chunk's first `>`.
            guard let close = rest.firstIndex(of: UInt8(ascii: ">")) else {
                pending.append(contentsOf: rest)
                if pending.count > HTMLLinkParser.holdBackLimit {
                    let all = pending
                    pending = []
                    all.withUnsafeBytes { give($0) }
                }
                return
            }
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[...close]))
            let all = pending
            pending = []
            all.withUnsafeBytes { give($0) }
            rest = UnsafeRawBufferPointer(rebasing: rest[(close + 1)...])
        }
        // The last `<` or `>`: from an unclosed `<` on, hold back.
        var i = rest.count
        while i > 0 {
            let b = rest[i - 1]
            if b == UInt8(ascii: ">") { break }
            if b == UInt8(ascii: "<") {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[(i - 1)...]))
                rest = UnsafeRawBufferPointer(rebasing: rest[..<(i - 1)])
                break
            }
            i -= 1
        }
        give(rest)
    }

    /// Straight to libxml2; `terminate` ends the document with the last
    /// of `bytes`.
    private func give(_ bytes: UnsafeRawBufferPointer, terminate: Bool = false) {
        guard let context else { return }
        var rest = bytes
        repeat {
            // htmlParseChunk takes an int count.
            let n = min(rest.count, 1 << 30)
            let last = n == rest.count
            green_html_push(context, rest.baseAddress.map { $0.assumingMemoryBound(to: CChar.self) }, Int32(n),
                            last && terminate ? 1 : 0)
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
        } while !rest.isEmpty
    }

    /// The records the C side collected, resolved.
    private func resolve() -> [String] {
        let l = links.pointee
        guard let bytes = l.bytes, l.count > 0 else { return [] }
        if l.meta_nofollow != 0 && !followNofollow { return [] }
        let all = UnsafeBufferPointer(start: bytes, count: l.count)
        var base: String?
        var i = 0
        while i < all.count {
            let length = Int(UnsafeRawPointer(bytes + i + 2).loadUnaligned(as: UInt32.self))
            if Int32(all[i]) == Int32(GREEN_HTML_BASE) {
                base = String(decoding: UnsafeBufferPointer(rebasing: all[(i + 6)..<(i + 6 + length)]), as: UTF8.self)
                break
            }
            i += 6 + length
        }
        var resolver = LinkResolver(pageURL: pageURL, base: base)
        i = 0
        while i < all.count {
            let kind = Int32(all[i])
            let flags = Int32(all[i + 1])
            let length = Int(UnsafeRawPointer(bytes + i + 2).loadUnaligned(as: UInt32.self))
            let value = UnsafeBufferPointer(rebasing: all[(i + 6)..<(i + 6 + length)])
            i += 6 + length
            if kind == Int32(GREEN_HTML_BASE) { continue }
            if flags & Int32(GREEN_HTML_REL_NOFOLLOW) != 0 && !followNofollow { continue }
            resolver.add(value)
        }
        return resolver.links
    }
}

/// libxml2 stopped reading a page before its end.
public struct LinkExtractionError: Error, Sendable, CustomStringConvertible {
    public let url: String
    public let bytesParsed: Int
    public let reason: String
    /// What was found before the parser stopped.
    public let links: [String]

    public var description: String {
        "HTML parser stopped on \(url) after \(bytesParsed) bytes: \(reason)"
    }
}
