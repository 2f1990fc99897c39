import Foundation

/// Token buckets by key (a username, a client address, a socket): `rate` per second, up to `burst`.
final class RateLimiter: @unchecked Sendable {
    private let lock = NSLock()
    private var buckets: [String: (tokens: Double, at: Double)] = [:]
    let rate: Double
    let burst: Double

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// Seconds to wait before `key` may try again, or nil when allowed now (and counted).
    func take(_ key: String, now: Double = Date().timeIntervalSince1970) -> Double? {
        lock.withLock {
            var bucket = buckets[key] ?? (burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                buckets[key] = bucket
                if buckets.count > 100_000 { prune(now) }
                return nil
            }
            buckets[key] = bucket
            return (1 - bucket.tokens) / rate
        }
    }

    /// Seconds to wait if `key` has no token left, without taking one.
    func wait(_ key: String, now: Double = Date().timeIntervalSince1970) -> Double? {
        lock.withLock {
            guard let bucket = buckets[key] else { return nil }
            let tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
            return tokens >= 1 ? nil : (1 - tokens) / rate
        }
    }

    private func prune(_ now: Double) {
        buckets = buckets.filter { min(burst, $0.value.tokens + (now - $0.value.at) * rate) < burst }
    }
}

/// A per-connection token bucket, used by one task only.
struct LocalBucket {
    var tokens: Double
    var at: Double
    let rate: Double
    let burst: Double

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        tokens = burst
        at = Date().timeIntervalSince1970
    }

    mutating func take() -> Bool {
        let now = Date().timeIntervalSince1970
        tokens = min(burst, tokens + (now - at) * rate)
        at = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
