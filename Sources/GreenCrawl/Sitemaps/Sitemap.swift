import CLibXML2
import Foundation
import GreenHTTP

/// One sitemap file (sitemaps.org protocol 0.9): a `<urlset>` of page
/// URLs, or a `<sitemapindex>` of further sitemaps; the `<loc>` of each
/// `<url>` or `<sitemap>` entry, in document order.
///
/// Parsed by libxml2's pull reader with the network, DTD loading and
/// entity substitution off: an external entity (XXE) is never read, a
/// `&name;` reference contributes nothing, and the predefined entities and
/// character references (`&amp;`, `&#38;`) decode as XML says.
public struct Sitemap: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `<urlset>`: `locations` are pages.
        case urlSet
        /// `<sitemapindex>`: `locations` are sitemaps.
        case index
    }

    /// The standard namespace; elements in no namespace are read too
    /// (many sites leave it out), elements of any other (images, news,
    /// hreflang links) are skipped.
    public static let namespace = "http://www.sitemaps.org/schemas/sitemap/0.9"
    /// The protocol's limits per file: entries, and uncompressed bytes
    /// (50 MB, 52,428,800 bytes).
    public static let maxLocations = 50_000
    public static let maxBytes = 52_428_800

    public let kind: Kind
    /// The `<loc>` values, whitespace around them trimmed, empty ones left
    /// out; as written (relative or non-http values too: the caller judges).
    public let locations: [String]

    public init(kind: Kind, locations: [String]) {
        self.kind = kind
        self.locations = locations
    }

    /// Parses the sitemap `data` fetched from `url` (which only names it in
    /// errors). Gzip data (the 1f 8b magic, whatever the name says) is
    /// decompressed first.
    ///
    /// Throws `SitemapError` naming `url`: malformed XML (with libxml2's
    /// message), a root element other than `<urlset>` or `<sitemapindex>`,
    /// more than `maxLocations` entries, more than `maxBytes` of XML, or
    /// gzip data that does not decode. Any thread; libxml2 prints nothing.
    public init(parsing data: [UInt8], url: String) throws {
        var xml = data
        if data.count >= 2 && data[0] == 0x1F && data[1] == 0x8B {
            do {
                xml = try ContentDecoding.decode(data, encoding: "gzip", limit: Sitemap.maxBytes)
            } catch {
                throw SitemapError(url: url, message: "gzip: \(error)")
            }
        }
        guard !xml.isEmpty else { throw SitemapError(url: url, message: "empty") }
        guard xml.count <= Sitemap.maxBytes else {
            throw SitemapError(url: url, message: "larger than the protocol's \(Sitemap.maxBytes) bytes")
        }
        (kind, locations) = try SitemapReader.read(xml, url: url)
    }
}

/// A sitemap that could not be fetched or read: which, and why.
public struct SitemapError: Error, Sendable, Equatable, CustomStringConvertible {
    public let url: String
    public let message: String

    public init(url: String, message: String) {
        self.url = url
        self.message = message
    }

    public var description: String { "sitemap \(url): \(message)" }
}

/// The walk over libxml2's xmlTextReader.
private enum SitemapReader {
    /// No network, no DTD or external entity loading (no DTDLOAD, DTDATTR,
    /// DTDVALID), no entity substitution (no NOENT): together they keep
    /// libxml2 from opening anything but the bytes given. NOERROR and
    /// NOWARNING: messages go to the handler below, never to stderr.
    static let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue
                               | XML_PARSE_NOWARNING.rawValue | XML_PARSE_NOCDATA.rawValue)

    /// The first error libxml2 reported, for the thrown message.
    final class Errors {
        var first: String?
    }

    static func read(_ xml: [UInt8], url: String) throws -> (Sitemap.Kind, [String]) {
        _ = LibXML2.ready
        let errors = Errors()
        return try xml.withUnsafeBufferPointer { bytes in
            // The reader reads `bytes` in place (no copy), so it must be
            // freed before this closure returns; `errors` outlives it too.
            guard let base = bytes.baseAddress,
                  let reader = xmlReaderForMemory(UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self),
                                                  Int32(bytes.count), url, nil, options)
            else {
                throw SitemapError(url: url, message: "libxml2 could not start a reader")
            }
            defer { xmlFreeTextReader(reader) }
            xmlTextReaderSetStructuredErrorHandler(reader, { context, error in
                guard let context, let error else { return }
                let errors = Unmanaged<Errors>.fromOpaque(context).takeUnretainedValue()
                guard errors.first == nil, error.pointee.level.rawValue >= XML_ERR_ERROR.rawValue else { return }
                let message = error.pointee.message.map { String(cString: $0) } ?? "error \(error.pointee.code)"
                errors.first = "line \(error.pointee.line): "
                    + message.trimmingCharacters(in: [" ", "\n", "\r", "\t"])
            }, Unmanaged.passUnretained(errors).toOpaque())
            return try walk(reader, url: url, errors: errors)
        }
    }

    private static func walk(_ reader: xmlTextReaderPtr, url: String, errors: Errors) throws -> (Sitemap.Kind, [String]) {
        var kind: Sitemap.Kind?
        var locations: [String] = []
        var inEntry = false
        var loc: [UInt8]?
        // A `&name;` inside the <loc>: not expanded, so the text read is
        // not the URL the file meant; the entry is dropped.
        var locHasReference = false
        while true {
            let rc = xmlTextReaderRead(reader)
            if rc == 0 { break }
            guard rc > 0 else {
                throw SitemapError(url: url, message: "malformed XML: \(errors.first ?? "libxml2 gave no reason")")
            }
            let depth = xmlTextReaderDepth(reader)
            switch xmlReaderTypes(rawValue: UInt32(bitPattern: xmlTextReaderNodeType(reader))) {
            case XML_READER_TYPE_ELEMENT:
                let name = ourElement(reader)
                if depth == 0 {
                    switch name {
                    case "urlset": kind = .urlSet
                    case "sitemapindex": kind = .index
                    default:
                        let found = string(xmlTextReaderConstLocalName(reader)) ?? "?"
                        throw SitemapError(url: url, message: "not a sitemap: the root element is <\(found)>")
                    }
                } else if depth == 1 {
                    inEntry = name == (kind == .urlSet ? "url" : "sitemap") && xmlTextReaderIsEmptyElement(reader) == 0
                } else if depth == 2 && inEntry && name == "loc" {
                    if xmlTextReaderIsEmptyElement(reader) == 0 {
                        loc = []
                        locHasReference = false
                    }
                }
            case XML_READER_TYPE_TEXT, XML_READER_TYPE_CDATA, XML_READER_TYPE_WHITESPACE,
                 XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
                if loc != nil, let value = xmlTextReaderConstValue(reader) {
                    loc! += UnsafeBufferPointer(start: value, count: Int(xmlStrlen(value)))
                }
            case XML_READER_TYPE_ENTITY_REFERENCE:
                if loc != nil { locHasReference = true }
            case XML_READER_TYPE_END_ELEMENT:
                if depth == 2, let bytes = loc {
                    loc = nil
                    if locHasReference { continue }
                    let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: [" ", "\n", "\r", "\t"])
                    if text.isEmpty { continue }
                    guard locations.count < Sitemap.maxLocations else {
                        throw SitemapError(url: url, message: "more than the protocol's \(Sitemap.maxLocations) entries")
                    }
                    locations.append(text)
                } else if depth == 1 {
                    inEntry = false
                }
            default:
                break
            }
        }
        guard let kind else { throw SitemapError(url: url, message: "no root element") }
        return (kind, locations)
    }

    /// The element's local name when it is in the sitemap namespace or in
    /// none; nil for any other namespace's.
    private static func ourElement(_ reader: xmlTextReaderPtr) -> String? {
        let namespace = string(xmlTextReaderConstNamespaceUri(reader))
        guard namespace == nil || namespace == Sitemap.namespace else { return nil }
        return string(xmlTextReaderConstLocalName(reader))
    }

    private static func string(_ value: UnsafePointer<xmlChar>?) -> String? {
        value.map { String(cString: $0) }
    }
}
