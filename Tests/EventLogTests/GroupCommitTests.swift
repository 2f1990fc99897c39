import Foundation
import Testing
@testable import EventLog

/// Group commit under a steady stream: with `.always`, the writer holds a batch open while
/// records arrive fast enough to fill it, so each fsync carries more of them.
@Suite struct GroupCommitTests {
    /// Reserves `count` records, one every `spacing` µs from one thread (as a busy server's
    /// decider would), waits until all are durable, and returns the log's batches.
    func steadyStream(gatherMicros: Int, count: Int = 1_500, spacing: Double = 100) async throws -> (batches: Int, records: Int) {
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path, options: EventLogOptions(durability: .always, gatherMicros: gatherMicros))
        let start = DispatchTime.now().uptimeNanoseconds
        var last: UInt64 = 0
        for i in 0..<count {
            let due = start + UInt64(Double(i) * spacing * 1000)
            while DispatchTime.now().uptimeNanoseconds < due {}
            last = try log.reserve([record(i)]).upperBound
        }
        try await log.waitUntilDurable(last)
        let batches = log.indexLock.withLock { log.index.batches.count }
        await log.close()
        #expect(try allRecords(dir.path).count == count, "every record durable and readable")
        return (batches, count)
    }

    @Test func fastArrivalsShareFsyncsAndSlowOnesDoNotWait() async throws {
        let plain = try await steadyStream(gatherMicros: 0)
        let gathered = try await steadyStream(gatherMicros: 2000)
        let plainSize = Double(plain.records) / Double(plain.batches)
        let gatheredSize = Double(gathered.records) / Double(gathered.batches)
        // 10,000 records/s: without gathering a batch holds what arrived during one fsync
        // (1–2 on a quiet disk, ~20 when a busy machine makes fsync take 2 ms); with 2 ms of
        // gathering about 20 whatever the disk does. So gathering must reach 10 per batch and
        // never make batches much smaller than the plain writer's.
        #expect(gatheredSize >= 10 && gatheredSize >= 0.5 * plainSize,
                "records per batch: \(gatheredSize) gathered vs \(plainSize) not gathered")

        // Slow arrivals (one per 5 ms) are never held back: each is its own batch, durable
        // long before the next arrives.
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path, options: EventLogOptions(durability: .always, gatherMicros: 2000))
        for i in 0..<20 {
            try await log.append(record(i))
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        #expect(log.indexLock.withLock { log.index.batches.count } == 20)
        #expect(log.gatherTarget() == nil, "at 200 records/s nothing is worth waiting for")
        await log.close()
    }
}
