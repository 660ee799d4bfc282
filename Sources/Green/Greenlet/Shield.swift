/// Runs `body` shielded from `kill` and from timeouts started outside it:
/// they are held until `body` ends and then thrown (if `body` returned
/// normally). Timeouts started inside `body` still apply. For critical
/// sections that must not stop halfway (a commit, a protocol trailer).
public func shielded<R>(_ body: () throws -> R) throws -> R {
    let hub = Hub.current
    let g = hub.current!
    g.shieldDepth += 1
    let result: R
    do {
        result = try body()
    } catch {
        g.shieldDepth -= 1
        throw error
    }
    g.shieldDepth -= 1
    try hub.checkpoint(g)
    return result
}
