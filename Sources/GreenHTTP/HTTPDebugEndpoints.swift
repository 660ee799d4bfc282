import Green

/// The server's own debug endpoints (`HTTPServer.Options.debugEndpoints`).
enum HTTPDebugEndpoints {
    static let greenletsPath = "/debug/greenlets"

    /// The answer to a request for a debug endpoint, or nil for a request
    /// the handler is to see. Blocks the calling greenlet while the dump
    /// is taken; throws only an interrupt.
    static func response(to request: HTTPRequest, options: HTTPServer.Options) throws -> HTTPResponse? {
        guard options.debugEndpoints, request.path == greenletsPath else { return nil }
        guard options.debugEndpointsFromAnyAddress || (request.peer?.isLoopback ?? false) else {
            return HTTPResponse(status: 403, text: "the debug endpoints answer clients on a loopback address only\n")
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            var r = HTTPResponse(status: 405, text: "GET or HEAD\n")
            r.headers.set("Allow", "GET, HEAD")
            return r
        }
        let query = queryItems(request.target)
        let full = query["full"].map { $0 == "1" || $0 == "true" } ?? false
        let json = query["format"] == "json"
        var r: HTTPResponse
        switch try catchingFailures({ json ? try GreenletDump.json(full: full) : try GreenletDump.text(full: full) }) {
        case .success(let text):
            r = HTTPResponse(status: 200, text: text,
                             contentType: json ? "application/json" : "text/plain; charset=utf-8")
        case .failure(let error):
            r = HTTPResponse(status: 500, text: "the greenlet dump failed: \(error)\n")
        }
        r.headers.set("Cache-Control", "no-store")
        return r
    }

    /// The query's name=value pairs (the last of a repeated name wins; no
    /// percent-decoding: the names and values here are plain words).
    static func queryItems(_ target: String) -> [String: String] {
        guard let q = target.firstIndex(of: "?") else { return [:] }
        var items: [String: String] = [:]
        for pair in target[target.index(after: q)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            items[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return items
    }
}
