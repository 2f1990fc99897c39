import ArgumentParser
import EventLog
import Foundation

/// `chat-es bench log`: append throughput and ack latency with concurrent writers, then
/// replay speed of the same log measured against stock `lz4 -d` on the same segments.
struct BenchLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Benchmark appends (group commit) and replay of the event log.",
        discussion: """
            Each writer task appends its share of the records; with --in-flight K it keeps \
            K single-record appends outstanding (reserve K records one by one, then wait \
            for the last to be durable) instead of awaiting each append before the next. \
            Latency is per append: from its call to the moment its caller learns it is durable. \
            Targets (reported, not asserted): fsync always with 64 writers ≥ 100k events/s; \
            fsync never ≥ 1M events/s at 100-byte payloads; replay ≥ 25% of lz4 -d MB/s.
            """
    )

    @Option(help: ArgumentHelp("Records to append.", valueName: "N"))
    var events = 1_000_000

    @Option(help: ArgumentHelp("Payload bytes per record.", valueName: "B"))
    var payload = 100

    @Option(help: ArgumentHelp("Concurrent appender tasks.", valueName: "W"))
    var writers = 64

    @Option(help: ArgumentHelp("Durability policy: always, never or interval=<ms>.", valueName: "POLICY"))
    var fsync = "always"

    @Option(name: .customLong("in-flight"), help: ArgumentHelp("Appends each writer keeps outstanding.", valueName: "K"))
    var inFlight = 1

    @OptionGroup var output: BenchOutputOptions

    func run() async throws {
        try await withToolExitCodesAsync {
            guard events > 0, payload >= 0, writers > 0, inFlight > 0 else {
                throw ToolError.usage("--events, --writers and --in-flight must be positive, --payload not negative")
            }
            guard let durability = Durability(parsing: fsync) else {
                throw ToolError.usage("--fsync wants always, never or interval=<ms>, not \(fsync)")
            }
            let dir = try BenchDirectory.make(data: output.data)
            defer { dir.cleanUp(keep: output.keep) }
            print("bench log: \(groupedCount(events)) records of \(payload) B, \(writers) writers × \(inFlight) in flight, fsync \(durability)")
            let appends = try await BenchLogAppends.run(
                directory: dir.logDirectory, durability: durability, events: events, payload: payload,
                writers: writers, inFlight: inFlight)
            appends.print(events: events, payload: payload, writers: writers, inFlight: inFlight, durability: durability)
            try BenchLogReplay.run(directory: dir.logDirectory, events: events)
        }
    }
}

/// The append phase: timings and every append's ack latency.
struct BenchLogAppends {
    var seconds: Double
    /// Sorted, nanoseconds.
    var latencies: [UInt64]

    static func run(directory: String, durability: Durability, events: Int, payload: Int,
                    writers: Int, inFlight: Int) async throws -> BenchLogAppends {
        let log = try EventLog.open(directory: directory, options: EventLogOptions(durability: durability))
        let payloads = samplePayloads(size: payload)
        let start = BenchClock.nanos()
        var latencies: [UInt64] = []
        latencies.reserveCapacity(events)
        do {
            try await withThrowingTaskGroup(of: [UInt64].self) { group in
                for w in 0..<writers {
                    let share = events / writers + (w < events % writers ? 1 : 0)
                    group.addTask {
                        try await appendShare(log, count: share, writer: w, inFlight: inFlight, payloads: payloads)
                    }
                }
                for try await part in group { latencies.append(contentsOf: part) }
            }
        } catch {
            await log.close()
            throw error
        }
        let seconds = BenchClock.seconds(since: start)
        await log.close()
        latencies.sort()
        return BenchLogAppends(seconds: seconds, latencies: latencies)
    }

    /// One writer's appends; returns their latencies.
    private static func appendShare(_ log: EventLog, count: Int, writer: Int, inFlight: Int,
                                    payloads: [[UInt8]]) async throws -> [UInt64] {
        var latencies: [UInt64] = []
        latencies.reserveCapacity(count)
        var started: [UInt64] = []
        started.reserveCapacity(inFlight)
        var i = 0
        while i < count {
            func next() -> NewRecord {
                NewRecord(timestamp: BenchClock.wallMicros(), type: 1, version: 1,
                          payload: payloads[(writer &* 7919 &+ i) % payloads.count])
            }
            if inFlight == 1 {
                let t0 = BenchClock.nanos()
                try await log.append(next())
                latencies.append(BenchClock.nanos() - t0)
                i += 1
                continue
            }
            started.removeAll(keepingCapacity: true)
            var last: UInt64 = 0
            while started.count < inFlight, i < count {
                started.append(BenchClock.nanos())
                last = try log.reserve([next()]).upperBound
                i += 1
            }
            try await log.waitUntilDurable(last)
            let done = BenchClock.nanos()
            for t0 in started { latencies.append(done - t0) }
        }
        return latencies
    }

    /// A pool of distinct payloads made of words, so the log compresses like text
    /// rather than like one repeated block.
    static func samplePayloads(size: Int, count: Int = 1024) -> [[UInt8]] {
        var rng = SplitMix64(seed: 42)
        return (0..<count).map { _ in
            var bytes: [UInt8] = []
            bytes.reserveCapacity(size + 16)
            while bytes.count < size {
                bytes.append(contentsOf: sampleWords[Int(rng.next() % UInt64(sampleWords.count))])
                bytes.append(UInt8(ascii: " "))
            }
            return Array(bytes.prefix(size))
        }
    }

    func print(events: Int, payload: Int, writers: Int, inFlight: Int, durability: Durability) {
        let measured = inFlight == 1
            ? "each writer awaits `append` before its next one"
            : "each writer keeps \(inFlight) single-record appends in flight (reserve × \(inFlight), then waitUntilDurable)"
        Swift.print("appends:  \(BenchFormat.rate(Double(events), seconds)) events/s  "
            + "\(BenchFormat.mbps(events * payload, seconds)) payload  "
            + "(\(BenchFormat.millis(seconds)) total; \(measured))")
        Swift.print("ack latency per append: p50 \(BenchFormat.micros(percentile(0.50)))  "
            + "p99 \(BenchFormat.micros(percentile(0.99)))  max \(BenchFormat.micros(latencies.last ?? 0))")
        let rate = Double(events) / seconds
        switch durability {
        case .always where writers >= 64:
            Swift.print("target fsync always, 64 writers ≥ 100,000 events/s: \(BenchFormat.target(rate >= 100_000))")
        case .never where payload <= 100:
            Swift.print("target fsync never, 100 B ≥ 1,000,000 events/s: \(BenchFormat.target(rate >= 1_000_000))")
        default:
            break
        }
    }

    private func percentile(_ p: Double) -> UInt64 { quantile(latencies, p) ?? 0 }
}

/// The replay phase of `bench log`: a `LogCursor` over every record, touching each
/// payload byte, against `lz4 -d` on the same segment files.
enum BenchLogReplay {
    static func run(directory: String, events: Int) throws {
        var best = Double.infinity
        var rawBytes = 0
        var checksum: UInt64 = 0
        for _ in 0..<3 {
            let cursor = LogCursor(directory: directory, from: 1)
            var delivered = 0
            let start = BenchClock.nanos()
            try cursor.poll { _, payload in
                var sum: UInt64 = 0
                for b in payload { sum &+= UInt64(b) }
                checksum &+= sum
                delivered += 1
                return true
            }
            best = min(best, BenchClock.seconds(since: start))
            rawBytes = cursor.rawBytesRead
            guard delivered == events else {
                throw ToolError.problem("replay delivered \(delivered) records, expected \(events)")
            }
        }
        print("replay:   \(BenchFormat.rate(Double(events), best)) events/s  "
            + "\(BenchFormat.mbps(rawBytes, best)) decompressed  (best of 3, \(BenchFormat.millis(best)); checksum \(checksum % 1000))")
        try compareWithLZ4(directory: directory, rawBytes: rawBytes, replaySeconds: best, target: 0.25)
    }

    /// Prints lz4's MB/s on the same segments and the replay:lz4 ratio.
    /// `target` (a fraction) is printed with its verdict when given.
    static func compareWithLZ4(directory: String, rawBytes: Int, replaySeconds: Double, target: Double? = nil) throws {
        let files = try SegmentFiles.list(directory)
        let onDisk = files.reduce(0) { $0 + $1.size }
        guard let lz4 = try LZ4Reference.decompressSeconds(files.map(\.path)) else {
            print(LZ4Reference.missingNote)
            return
        }
        let ratio = lz4 / replaySeconds
        print("lz4 -d:   \(BenchFormat.mbps(rawBytes, lz4)) decompressed  (best of 3, \(BenchFormat.millis(lz4)); "
            + "\(files.count) segments, \(groupedCount(onDisk)) B on disk, \(groupedCount(rawBytes)) B raw)")
        var verdict = ""
        if let target { verdict = "  target ≥ \(BenchFormat.percent(target)): \(BenchFormat.target(ratio >= target))" }
        print("replay ÷ lz4 -d: \(BenchFormat.percent(ratio)) (MB/s over MB/s)\(verdict)")
    }
}

/// A small fast deterministic generator (SplitMix64) for benchmark data.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<n` (n > 0); the modulo bias is irrelevant for test data.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Words for generated text payloads and chat messages.
let sampleWords: [[UInt8]] = """
    the of and to in is you that it he was for on are as with his they at be this have from \
    or one had by word but not what all were we when your can said there use an each which she \
    do how their if will up other about out many then them these so some her would make like him \
    into time has look two more write go see number no way could people my than first water been \
    call who oil its now find long down day did get come made may part hello thanks tomorrow \
    meeting lunch coffee later great sounds good ok sure maybe tonight weekend project deadline \
    review merge deploy server chat message friend photo link call me back running late on my way \
    happy birthday congrats see you soon love this haha lol yes nope why where what time works
    """.split(separator: " ").map { Array($0.utf8) }
