import Foundation
import Testing
import EventLog
@testable import Projections

/// The on-disk round trip: a random stream appended to a real log and rebuilt from it.
@Suite struct EventLogReplayTests {
    @Test func rebuildFromLogEqualsLiveState() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("proj-log-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stream = RandomStream.make(seed: 31, count: 4_000)
        let log = try EventLog.open(directory: dir, options: EventLogOptions(segmentBytes: 64 << 10, durability: .never))
        var start = 0
        while start < stream.items.count {
            let batch = stream.items[start..<min(start + 97, stream.items.count)].map {
                NewRecord(timestamp: $0.record.timestamp, type: $0.record.type, version: $0.record.version, payload: $0.record.payload)
            }
            let seqs = try await log.append(batch)
            #expect(seqs.lowerBound == UInt64(start + 1))
            start += batch.count
        }
        let live = stream.live()
        let rebuilt = try ProjectionSet.rebuild(scan: { try log.scan(from: 1, $0) })
        #expect(rebuilt == live)
        #expect(rebuilt.digest() == live.digest())
        let asOf = try ProjectionSet.rebuild(scan: { try log.scan(from: 1, $0) }, asOf: .seq(1_234))
        #expect(asOf == stream.live(through: 1_234))
        await log.close()

        // Reopened, with a snapshot at a batch end: snapshot + tail = full state.
        let reopened = try EventLog.open(directory: dir)
        try stream.live(through: 97 * 25).writeSnapshot(to: dir, chainHash: try #require(try reopened.chainHash(at: 97 * 25)))
        var resumed = try #require(ProjectionSet.loadNewestSnapshot(from: dir) { try? reopened.chainHash(at: $0) }.set)
        let from = resumed.lastSeq + 1
        try resumed.replay(scan: { try reopened.scan(from: from, $0) })
        #expect(resumed == live)
        #expect(try reopened.chainHash(at: 97 * 25 + 1) == nil, "not a batch end")
        await reopened.close()
    }
}
