import Foundation
import GreenHTTP

/// When a fetch is tried again, and after how long: connection failures
/// (refused, reset, closed before any answer, a connect timeout), 429 and
/// 5xx answers, up to `retries` more attempts. The wait doubles from
/// `baseDelay` with each attempt, with jitter (between half and all of
/// it, so that a crowd of failures does not come back at once), unless
/// the answer carries a `Retry-After`, which is obeyed (plus up to a
/// quarter more); one asking for longer than `maxRetryAfter` ends the
/// retries, and no backoff grows past it. A read
/// timeout is not retried: the server answered the connection and is
/// slow, and asking again would add to its load.
public struct RetryPolicy: Sendable {
    public var retries: Int
    public var baseDelay: Double
    public var maxRetryAfter: Double

    public init(retries: Int, baseDelay: Double, maxRetryAfter: Double) {
        self.retries = retries
        self.baseDelay = baseDelay
        self.maxRetryAfter = maxRetryAfter
    }

    public enum Decision: Equatable, Sendable {
        case retry(after: Double)
        case stop
    }

    /// After attempt number `attempt` (0: the first) ended in `status`
    /// with `headers`, or failed with `error`.
    public func decide(attempt: Int, status: Int?, headers: HTTPHeaders?, error: Error?, now: Date = Date(),
                random: Double = Double.random(in: 0.5...1)) -> Decision {
        guard attempt < retries else { return .stop }
        if let error {
            guard RetryPolicy.isRetryable(error) else { return .stop }
        } else if let status {
            guard status == 429 || (500..<600).contains(status) else { return .stop }
            if let value = headers?["Retry-After"] {
                guard let seconds = RetryPolicy.retryAfterSeconds(value, now: now), seconds <= maxRetryAfter else {
                    return .stop
                }
                // Obeyed as given, with up to a quarter more, so that the
                // clients a server turned away do not all come back at once.
                return .retry(after: seconds * (1 + (random - 0.5) / 2))
            }
        } else {
            return .stop
        }
        // Doubling, but never past the longest Retry-After obeyed.
        return .retry(after: min(baseDelay * pow(2, Double(min(attempt, 62))), maxRetryAfter) * random)
    }

    public static func isRetryable(_ error: Error) -> Bool {
        guard let e = error as? HTTPClientError else { return false }
        switch e.kind {
        case .connection, .closedBeforeResponse: return true
        case .timedOut(let phase, _): return phase == "connect"
        default: return false
        }
    }

    /// `Retry-After` as seconds from `now`: delay-seconds or an HTTP-date
    /// (RFC 9110 section 10.2.3); nil when it is neither.
    public static func retryAfterSeconds(_ value: String, now: Date) -> Double? {
        let text = value.trimmingCharacters(in: .whitespaces)
        // Delay-seconds are whole; a fraction is read too, as lenient
        // clients do.
        if let seconds = Double(text), seconds.isFinite { return seconds >= 0 ? seconds : nil }
        // IMF-fixdate, the form senders must use: "Sun, 06 Nov 1994 08:49:37 GMT".
        let format = DateFormatter()
        format.locale = Locale(identifier: "en_US_POSIX")
        format.timeZone = TimeZone(identifier: "GMT")
        format.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        guard let date = format.date(from: text) else { return nil }
        let when = date.timeIntervalSince1970
        return max(0, when - now.timeIntervalSince1970)
    }
}
