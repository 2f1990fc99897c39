import Foundation
import Testing
@testable import EventLog
@testable import Projections

/// Replaying encoded records must rebuild exactly the state live traffic built.
@Suite struct ReplayTests {
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func liveEqualsEncodedDecodedReplay(seed: UInt64) throws {
        let stream = RandomStream.make(seed: seed, count: 3_000)
        let live = stream.live()
        let replayed = try ProjectionSet.rebuild(scan: scanner(stream.records))
        #expect(replayed == live)
        #expect(replayed.digest() == live.digest())
        #expect(replayed.lastSeq == 3_000)
        #expect(replayed.lastTimestamp == stream.records.last?.timestamp)

        // The full decoder (audits) agrees with the fast path record by record.
        var decoded = ProjectionSet()
        for r in stream.records { decoded.apply(try Event.decode(r), seq: r.seq, timestamp: r.timestamp) }
        #expect(decoded == live)
    }

    @Test func streamsExerciseEveryView() {
        let stream = RandomStream.make(seed: 1, count: 3_000)
        let live = stream.live()
        #expect(live.users.count > 50)
        #expect(live.sessions.count > 50)
        #expect(live.friendship.edgeCount > 50)
        #expect(live.conversations.messageCount > 1_000)
        #expect(live.presence.epoch > 1)
        // Server restarts keep clearing sockets, so look for connected users along the way.
        #expect((1...30).contains { !stream.live(through: $0 * 100).presence.connectedUserIds.isEmpty })
    }

    @Test func digestsDifferWhenStateDiffers() {
        let stream = RandomStream.make(seed: 9, count: 1_000)
        let a = stream.live()
        let b = stream.live(through: 999)
        #expect(a.digest() != b.digest())
        let changed = Set(a.digest().keys.filter { a.digest()[$0] != b.digest()[$0] })
        #expect(changed.contains("position"))
        #expect(a.digest().keys.sorted() == ["conversations", "friendship", "position", "presence", "sessions", "users"])
    }

    @Test func replayAfterAPositionSkipsOlderRecords() throws {
        let stream = RandomStream.make(seed: 4, count: 500)
        var partial = try ProjectionSet.rebuild(scan: scanner(stream.records), asOf: .seq(200))
        // The scanner starts from the beginning again; records up to 200 are skipped.
        try partial.replay(scan: scanner(stream.records))
        #expect(partial == stream.live())
    }

    @Test func replayStopsAtTheFirstBadRecordAndNamesIt() throws {
        var records = RandomStream.make(seed: 6, count: 50).records
        records[29].type = 99
        let error = #expect(throws: EventDecodingError.self) {
            _ = try ProjectionSet.rebuild(scan: scanner(records))
        }
        #expect(error?.description == "seq 30: unknown event type 99")
    }

    @Test func progressIsReported() throws {
        let records = RandomStream.make(seed: 2, count: 100).records
        var reported: [UInt64] = []
        _ = try ProjectionSet.rebuild(scan: scanner(records)) { reported.append($0) }
        #expect(reported == [100])
    }

    @Test func viewDumpsAreJSONWithoutSecrets() throws {
        let stream = RandomStream.make(seed: 3, count: 1_000)
        let set = stream.live()
        for name in ProjectionSet.viewNames {
            let text = try #require(set.viewJSON(name, now: stream.now))
            #expect(!text.contains("pbkdf2"))
            #expect(text.hasPrefix("{\"view\":\"\(name)\",\"position\":1000"))
            let object = try JSONSerializationShim.parse(text)
            #expect(object["view"] as? String == name)
        }
        #expect(set.viewJSON("nope", now: 0) == nil)
    }
}

/// Parses a JSON object with Foundation, to check our hand-written output is valid JSON.
enum JSONSerializationShim {
    static func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }
}
