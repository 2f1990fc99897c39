import Foundation
import Testing
@testable import EventLog
@testable import Projections

/// Schema release 3 (several nodes on one log): `Fixtures/schema3.records` holds a log where a
/// node alone on it started (ServerStarted v1), then nodes of a shared log joined
/// (ServerStarted v2 with `shared`) and one left (NodeLeft v1), in the framing of
/// `schema1.records`. Frozen: never regenerate it.
@Suite struct SharedLogSchemaFixtureTests {
    static let fixtureName = "schema3.records"

    static func schema3Records() -> [Record] {
        let base: Int64 = 1_796_256_000_000_000  // 2026-12-03T00:00:00Z
        let v1Start: [UInt8] = [1]  // ServerStarted v1: varint epoch 1
        let events: [Event] = [
            .serverStarted(ServerStarted(epoch: 2, shared: true)),
            .serverStarted(ServerStarted(epoch: 3, shared: true)),
            .socketConnected(SocketConnected(userId: 1, socketId: 2 << 32 | 1)),
            .socketConnected(SocketConnected(userId: 2, socketId: 3 << 32 | 1)),
            .socketConnected(SocketConnected(userId: 2, socketId: 2 << 32 | 2)),
            .nodeLeft(NodeLeft(epoch: 2)),
        ]
        var records = [Record(seq: 1, timestamp: base, type: EventType.serverStarted.rawValue, version: 1, payload: v1Start)]
        for (i, event) in events.enumerated() {
            let r = event.record(timestamp: base + Int64(i + 1) * 1_000_000)
            records.append(Record(seq: UInt64(i + 2), timestamp: r.timestamp, type: r.type, version: r.version, payload: r.payload))
        }
        return records
    }

    /// Writes the fixture into the source tree. Run once, by hand, only to create a new
    /// fixture: `CHAT_ES_WRITE_FIXTURES=1 swift test --filter writeSchema3Fixture`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CHAT_ES_WRITE_FIXTURES"] == "1"))
    func writeSchema3Fixture() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let url = dir.appendingPathComponent(Self.fixtureName)
        guard !FileManager.default.fileExists(atPath: url.path) else { return }  // frozen
        try Data(frame(Self.schema3Records())).write(to: url)
    }

    @Test func schema3LogReplaysToTheExpectedPresence() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let records = try unframe([UInt8](try Data(contentsOf: url.appendingPathComponent(Self.fixtureName))))
        #expect(records.count == 7)
        #expect(records.filter { $0.type == EventType.serverStarted.rawValue }.map(\.version) == [1, 2, 2])
        #expect(try Event.decode(records[0]) == .serverStarted(ServerStarted(epoch: 1, shared: false)))
        #expect(try Event.decode(records[6]) == .nodeLeft(NodeLeft(epoch: 2)))
        let set = try ProjectionSet.rebuild(scan: scanner(records))
        #expect(set.presence.epoch == 3)
        #expect(!set.isConnected(1), "user 1's only socket was on the node that left")
        #expect(set.presence.socketIds(of: 2) == [3 << 32 | 1])
    }
}
