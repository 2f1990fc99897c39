/// A log-linear latency histogram over nanoseconds (HdrHistogram-like).
///
/// Fixed memory (about 36 KiB) whatever the run length, and under 1% relative
/// error: values below 256 ns are exact, above that every power of two is
/// split into 128 buckets. Values above 2^40 ns (~18 min) are clamped.
struct LoadgenHistogram: Sendable {
    private static let subBits = 7
    private static let maxExponent = 40
    private static let bucketCount = (maxExponent - subBits) * (1 << subBits) + (2 << subBits)

    private var counts = [UInt64](repeating: 0, count: LoadgenHistogram.bucketCount)
    private(set) var count: UInt64 = 0
    private(set) var sum: Double = 0
    private(set) var max: UInt64 = 0

    mutating func record(nanos: UInt64) {
        let value = Swift.min(nanos, (UInt64(1) << Self.maxExponent) - 1)
        counts[Self.index(of: value)] += 1
        count += 1
        sum += Double(value)
        if value > max { max = value }
    }

    mutating func merge(_ other: LoadgenHistogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        count += other.count
        sum += other.sum
        max = Swift.max(max, other.max)
    }

    /// The value at quantile `q` (0...1) in nanoseconds, or nil when empty.
    func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = Swift.max(1, UInt64((q * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, bucket) in counts.enumerated() where bucket > 0 {
            seen += bucket
            if seen >= rank { return Swift.min(Self.midpoint(of: index), Double(max)) }
        }
        return Double(max)
    }

    var mean: Double? { count > 0 ? sum / Double(count) : nil }

    private static func index(of value: UInt64) -> Int {
        if value < (2 << subBits) { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount
        let mantissa = Int(value >> UInt64(exponent - subBits))
        return (exponent - subBits) * (1 << subBits) + mantissa
    }

    private static func midpoint(of index: Int) -> Double {
        if index < (2 << subBits) { return Double(index) }
        let exponent = (index >> subBits) + subBits - 1
        let mantissa = (index & ((1 << subBits) - 1)) + (1 << subBits)
        let width = Double(UInt64(1) << UInt64(exponent - subBits))
        return Double(mantissa) * width + width / 2
    }
}

/// Counters kept by one socket (and by the HTTP client for setup); summed at the end.
struct LoadgenCounters: Sendable {
    /// Distinct frames sent (retries not included).
    var sent = 0
    /// Re-sends after a `rate_limited` error frame.
    var retries = 0
    var acked = 0
    var delivered = 0
    /// `rate_limited` error frames and HTTP 429 answers (not counted in `errors`).
    var rateLimited = 0
    /// `error` frames other than `rate_limited`, by code.
    var errorCodes: [String: Int] = [:]
    /// Failed HTTP attempts (transport errors, unexpected statuses).
    var httpFailures = 0
    var connectFailures = 0
    /// Sockets that ended before the run closed them, and failed writes.
    var socketFailures = 0
    /// Text frames that were not the JSON the contract describes.
    var badFrames = 0
    /// Acks for a client_id with nothing pending (a server acking twice).
    var unexpectedAcks = 0

    var errorFrames: Int { errorCodes.values.reduce(0, +) }
    var errors: Int { errorFrames + httpFailures + connectFailures + socketFailures + badFrames }

    mutating func add(_ other: LoadgenCounters) {
        sent += other.sent
        retries += other.retries
        acked += other.acked
        delivered += other.delivered
        rateLimited += other.rateLimited
        errorCodes.merge(other.errorCodes, uniquingKeysWith: +)
        httpFailures += other.httpFailures
        connectFailures += other.connectFailures
        socketFailures += other.socketFailures
        badFrames += other.badFrames
        unexpectedAcks += other.unexpectedAcks
    }
}

/// Latency histograms shared by all sockets, split into lock shards so that
/// sockets rarely contend and memory stays fixed however many users there are.
final class LoadgenLatencies: Sendable {
    private struct Shard {
        var ack = LoadgenHistogram()
        var e2e = LoadgenHistogram()
    }

    private let shards: [LoadgenLocked<Shard>]

    init(shards count: Int = 16) {
        shards = (0..<count).map { _ in LoadgenLocked(Shard()) }
    }

    func recordAck(nanos: UInt64, shard: Int) {
        shards[shard % shards.count].withLock { $0.ack.record(nanos: nanos) }
    }

    func recordDelivery(nanos: UInt64, shard: Int) {
        shards[shard % shards.count].withLock { $0.e2e.record(nanos: nanos) }
    }

    func merged() -> (ack: LoadgenHistogram, e2e: LoadgenHistogram) {
        var ack = LoadgenHistogram()
        var e2e = LoadgenHistogram()
        for shard in shards {
            shard.withLock { value in
                ack.merge(value.ack)
                e2e.merge(value.e2e)
            }
        }
        return (ack, e2e)
    }
}
