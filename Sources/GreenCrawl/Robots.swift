import Foundation

/// A robots.txt, as the crawler obeys it: the group for our user agent
/// (or `*`), `Allow`/`Disallow` path prefixes where the longest match
/// wins (Allow on a tie), `*` and `$` in patterns, and `Crawl-delay`;
/// and the `Sitemap:` lines, which belong to no group.
public struct Robots: Sendable {
    struct Rule: Sendable {
        let allow: Bool
        let pattern: String
    }

    private let rules: [Rule]
    /// Seconds between requests the site asks for, if any.
    public let crawlDelay: Double?
    /// The absolute http(s) URLs of the `Sitemap:` lines, in order, without
    /// repeats. They apply whatever the user agent: the sitemaps.org
    /// protocol puts them outside the groups, wherever they stand.
    public let sitemaps: [String]

    /// Everything allowed (no robots.txt, or not a usable one).
    public static let allowAll = Robots(rules: [], crawlDelay: nil, sitemaps: [])

    private init(rules: [Rule], crawlDelay: Double?, sitemaps: [String]) {
        self.rules = rules
        self.crawlDelay = crawlDelay
        self.sitemaps = sitemaps
    }

    /// Parses `text` for `userAgent` (matched case-insensitively as a
    /// substring of the agent's product token, as crawlers do).
    public init(parsing text: String, userAgent: String) {
        let agent = userAgent.lowercased()
        var groups: [(agents: [String], rules: [Rule], delay: Double?)] = []
        var current: (agents: [String], rules: [Rule], delay: Double?)?
        var lastWasAgent = false
        var sitemaps: [String] = []
        var seenSitemaps: Set<String> = []
        // Character by Character, "\r\n" is one Character: split on any
        // newline, which covers it.
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingSpaces().lowercased()
            let value = String(line[line.index(after: colon)...].trimmingSpaces())
            switch key {
            case "user-agent":
                if !lastWasAgent {
                    if let c = current { groups.append(c) }
                    current = ([], [], nil)
                }
                current!.agents.append(value.lowercased())
                lastWasAgent = true
            case "allow", "disallow":
                lastWasAgent = false
                guard current != nil else { continue }
                // An empty Disallow allows everything: no rule.
                if value.isEmpty { continue }
                current!.rules.append(Rule(allow: key == "allow", pattern: value))
            case "crawl-delay":
                lastWasAgent = false
                if current != nil, let d = Double(value) { current!.delay = d }
            case "sitemap":
                // Not a group member: a run of User-agent lines goes on
                // across it. Relative URLs have no base to resolve against
                // that the protocol names, so they are dropped.
                if let url = URL(string: value), let scheme = url.scheme?.lowercased(),
                   scheme == "http" || scheme == "https", url.host != nil, seenSitemaps.insert(value).inserted {
                    sitemaps.append(value)
                }
            default:
                lastWasAgent = false
            }
        }
        if let c = current { groups.append(c) }
        let mine = groups.first { g in g.agents.contains { $0 != "*" && agent.contains($0) } }
            ?? groups.first { $0.agents.contains("*") }
        rules = mine?.rules ?? []
        crawlDelay = mine?.delay
        self.sitemaps = sitemaps
    }

    /// Whether `path` (with its query) may be fetched.
    public func allows(_ path: String) -> Bool {
        var best: Rule?
        var bestLength = -1
        for r in rules where Robots.matches(r.pattern, path) {
            let length = r.pattern.count
            if length > bestLength || (length == bestLength && r.allow) {
                best = r
                bestLength = length
            }
        }
        return best?.allow ?? true
    }

    /// Prefix match with `*` (any run) and a final `$` (end of path).
    static func matches(_ pattern: String, _ path: String) -> Bool {
        var p = Substring(pattern)
        let anchored = p.hasSuffix("$")
        if anchored { p = p.dropLast() }
        let parts = p.split(separator: "*", omittingEmptySubsequences: false)
        var rest = Substring(path)
        for (i, part) in parts.enumerated() {
            if i == 0 {
                guard rest.hasPrefix(part) else { return false }
                rest = rest.dropFirst(part.count)
            } else if let r = rest.range(of: part) {
                rest = rest[r.upperBound...]
            } else {
                return false
            }
        }
        return !anchored || rest.isEmpty || (parts.last?.isEmpty ?? false)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
