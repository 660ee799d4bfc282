import CLibXML2

/// libxml2's one-time set-up. `xmlInitParser` must run once before any
/// thread parses, and in libxml2 2.9 two first calls racing on two
/// threads are not safe: every user (the link parser, the sitemap
/// reader) goes through this one lazily initialized global, which Swift
/// runs exactly once.
enum LibXML2 {
    static let ready: Bool = {
        xmlInitParser()
        return true
    }()
}
