import Foundation
import Glibc
import Green
import GreenRedis

// The Lua scripts behind RedisFrontier's steps: each step that touches
// several keys runs as one script, so it is atomic whatever the other
// processes do (see RedisFrontier.swift for the keys).
/// A script that reads the time, in two versions: one on the server's
/// clock (`TIME`), one on the caller's (`RedisFrontier.Clock.hub`), which
/// the caller passes as one more argument, taken off before the script's
/// own arguments are read.
struct TimedScript: Sendable {
    let server: RedisScript
    let caller: RedisScript

    /// The server's clock in milliseconds.
    private static let serverNow = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        """
    /// The caller's clock in milliseconds: the last argument.
    private static let callerNow = "local now = tonumber(table.remove(ARGV))"

    init(name: String, _ body: String) {
        server = RedisScript(name: name, Self.serverNow + body)
        caller = RedisScript(name: name, Self.callerNow + body)
    }
}

extension RedisFrontier {

    /// KEYS meta frontier seen workers done; ARGV mode worker lease start
    /// maxPages maxDepth hosts delay robots perHost.
    static let joinScript = TimedScript(name: "join", """

        local function settings(tag)
          local s = redis.call('HMGET', KEYS[1], 'start', 'max_pages', 'max_depth', 'hosts', 'delay', 'robots', 'per_host')
          return {tag, s[1], s[2], s[3], s[4], s[5], s[6], s[7] or '0'}
        end
        if redis.call('EXISTS', KEYS[1]) == 0 then
          if ARGV[4] == '' or ARGV[1] == 'resume' then return {'missing'} end
          redis.call('HSET', KEYS[1], 'start', ARGV[4], 'max_pages', ARGV[5], 'max_depth', ARGV[6],
                     'hosts', ARGV[7], 'delay', ARGV[8], 'robots', ARGV[9], 'per_host', ARGV[10], 'status', 'running',
                     'created_ms', now)
          redis.call('SADD', KEYS[3], ARGV[4])
          redis.call('RPUSH', KEYS[2], '0 ' .. ARGV[4])
          redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), ARGV[2])
          return settings('created')
        end
        local start = redis.call('HGET', KEYS[1], 'start')
        if ARGV[4] ~= '' and ARGV[4] ~= start then return {'other', start} end
        if redis.call('HGET', KEYS[1], 'status') == 'finished' then return {'finished'} end
        redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
        if redis.call('ZCARD', KEYS[4]) == 0 and ARGV[1] ~= 'resume' then
          return {'stopped', tostring(redis.call('LLEN', KEYS[2])), tostring(redis.call('HLEN', KEYS[5]))}
        end
        redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), ARGV[2])
        return settings('joined')
        """)

    /// KEYS workers; ARGV worker lease: the live processes (this one's
    /// heartbeat renewed).
    static let liveScript = TimedScript(name: "live", """

        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        return redis.call('ZCOUNT', KEYS[1], now, '+inf')
        """)

    /// KEYS frontier leases owners done workers meta; ARGV worker count lease.
    static let claimScript = TimedScript(name: "claim", "\n" + requireCrawl("KEYS[6]") + """
        if redis.call('HGET', KEYS[6], 'status') == 'finished' then return {'finished'} end
        local lease = tonumber(ARGV[3])
        local function url(e) return string.sub(e, string.find(e, ' ', 1, true) + 1) end
        -- Leases that expired go back to the head of the frontier.
        local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
        local back = 0
        for _, e in ipairs(expired) do
          redis.call('ZREM', KEYS[2], e)
          redis.call('HDEL', KEYS[3], e)
          if redis.call('HEXISTS', KEYS[4], url(e)) == 0 then
            redis.call('LPUSH', KEYS[1], e)
            back = back + 1
          end
        end
        if back > 0 then redis.call('HINCRBY', KEYS[6], 'reclaimed', back) end
        redis.call('ZADD', KEYS[5], now + lease, ARGV[1])
        local out = {'ok'}
        local want = tonumber(ARGV[2])
        while #out <= want do
          local e = redis.call('LPOP', KEYS[1])
          if not e then break end
          if redis.call('HEXISTS', KEYS[4], url(e)) == 0 then
            redis.call('ZADD', KEYS[2], now + lease, e)
            redis.call('HSET', KEYS[3], e, ARGV[1])
            out[#out + 1] = e
          end
        end
        if #out > 1 then
          redis.call('HSETNX', KEYS[6], 'first_claim_ms', now)
          return out
        end
        local soonest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
        if #soonest == 0 then
          redis.call('HSET', KEYS[6], 'status', 'finished', 'finished_ms', now)
          return {'finished'}
        end
        return {'wait', math.max(1, tonumber(soonest[2]) - now)}
        """)

    /// KEYS done failed leases owners seen frontier meta pages_by; ARGV
    /// worker entry url failed nextDepth maxPages links...
    static let completeScript = TimedScript(name: "complete", "\n" + requireCrawl("KEYS[7]") + """
        if redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[1] then
          redis.call('ZREM', KEYS[3], ARGV[2])
          redis.call('HDEL', KEYS[4], ARGV[2])
        end
        if redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[1]) == 0 then
          -- Recorded before: by this process (a retry whose first reply
          -- was lost), or by another after this one's lease expired.
          if redis.call('HGET', KEYS[1], ARGV[3]) == ARGV[1] then return 1 end
          redis.call('HINCRBY', KEYS[7], 'refetched', 1)
          return 0
        end
        if ARGV[4] == '1' then redis.call('SADD', KEYS[2], ARGV[3]) end
        redis.call('HINCRBY', KEYS[8], ARGV[1], 1)
        local room = tonumber(ARGV[6]) - redis.call('SCARD', KEYS[5])
        for i = 7, #ARGV do
          if room <= 0 then break end
          if redis.call('SADD', KEYS[5], ARGV[i]) == 1 then
            redis.call('RPUSH', KEYS[6], ARGV[5] .. ' ' .. ARGV[i])
            room = room - 1
          end
        end
        return 1
        """)

    /// KEYS leases owners workers meta; ARGV worker lease entries...
    static let renewScript = TimedScript(name: "renew", "\n" + requireCrawl("KEYS[4]") + """
        local until_ = now + tonumber(ARGV[2])
        redis.call('ZADD', KEYS[3], until_, ARGV[1])
        local lost = 0
        for i = 3, #ARGV do
          if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
            redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i])
          else
            lost = lost + 1
          end
        end
        return lost
        """)

    /// KEYS leases owners frontier workers; ARGV worker entries...
    static let leaveScript = RedisScript(name: "leave", """
        local back = 0
        for i = #ARGV, 2, -1 do
          if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
            redis.call('ZREM', KEYS[1], ARGV[i])
            redis.call('HDEL', KEYS[2], ARGV[i])
            redis.call('LPUSH', KEYS[3], ARGV[i])
            back = back + 1
          end
        end
        redis.call('ZREM', KEYS[4], ARGV[1])
        return back
        """)

    /// KEYS leases owners; ARGV worker entries...
    static let dropScript = RedisScript(name: "drop", """
        for i = 2, #ARGV do
          if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
            redis.call('ZREM', KEYS[1], ARGV[i])
            redis.call('HDEL', KEYS[2], ARGV[i])
          end
        end
        return 0
        """)

    /// KEYS conns conn_origins; ARGV origin cap token holdMS: 1 when the
    /// slot was taken, 0 when the origin's slots are all in use.
    static let connectionScript = TimedScript(name: "connection", """

        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
        redis.call('SADD', KEYS[2], ARGV[1])
        return 1
        """)

    /// KEYS polite; ARGV origin delayMS: milliseconds until this request's
    /// slot.
    static let politeScript = TimedScript(name: "politeness", """

        local free = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
        local slot = math.max(now, free)
        redis.call('HSET', KEYS[1], ARGV[1], slot + tonumber(ARGV[2]))
        return slot - now
        """)

    /// The first lines of every step that needs the crawl: its settings
    /// must be there (they are gone if the keys were deleted, or the server
    /// restarted without persistence), or the step would go on from an
    /// empty state.
    private static func requireCrawl(_ metaKey: String) -> String {
        "if redis.call('EXISTS', \(metaKey)) == 0 then return redis.error_reply('CRAWLGONE the crawl has no settings') end\n"
    }
}
