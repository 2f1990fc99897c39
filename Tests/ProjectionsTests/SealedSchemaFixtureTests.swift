import Foundation
import Testing
@testable import EventLog
@testable import Projections

/// Schema release 2 (personal fields sealed): `Fixtures/schema2/` holds `log.records` (the
/// RecordLayout framing, as `schema1.records`) with its key store (`keys/`) and the master key
/// it was made with (`master-key`, a fixture's key, not a secret). User 3 was erased: the log
/// holds a `UserErased` and the key store no key for them. Frozen: never regenerate it.
@Suite struct SealedSchemaFixtureTests {
    static let base: Int64 = 1_796_169_600_000_000  // 2026-12-02T00:00:00Z
    static let longText = String(repeating: "a long reply, compressed before it is sealed. ", count: 8)

    static func fixtureDirectory() throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        return url.appendingPathComponent("schema2").path
    }

    /// Writes the fixture into the source tree. Run once, by hand, only to create a new
    /// fixture: `CHAT_ES_WRITE_FIXTURES=1 swift test --filter writeSchema2Fixture`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CHAT_ES_WRITE_FIXTURES"] == "1"))
    func writeSchema2Fixture() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/schema2").path
        guard !FileManager.default.fileExists(atPath: dir) else { return }  // frozen
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let masterHex = SecretMaterial.randomHex()
        try Data((masterHex + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/master-key"))
        let master = try #require(try MasterKey.load(dataDirectory: dir, environment: [:], create: false))
        let store = try KeyStore.open(dataDirectory: dir, master: master)
        let keys = try store.createKeys(for: [1, 2, 3])
        func account(_ id: UInt32, _ name: String) throws -> Event {
            let box = try SealedBox.seal(AccountFields(username: name, passwordHash: "pbkdf2_sha256$870000$c2FsdA$aGFzaA==").bytes,
                                         field: .account, owner: id, key: keys[Int(id) - 1])
            return .userRegistered(UserRegistered(userId: id, account: .sealed(nameKey: store.nameIndex.nameKey(for: name), box: box)))
        }
        func message(_ c: UInt32, _ from: UInt32, _ to: UInt32, _ text: String, _ clientId: String?) throws -> Event {
            let box = try SealedBox.seal(Array(text.utf8), field: .messageText, owner: from, key: keys[Int(from) - 1])
            return .messageSent(MessageSent(conversation: c, senderId: from, receiverId: to, body: .sealed(box), clientId: clientId))
        }
        let events: [Event] = [
            .serverStarted(ServerStarted(epoch: 1)),
            try account(1, "Ålice"),
            try account(2, "bob"),
            try account(3, "carol"),
            .userLoggedIn(UserLoggedIn(userId: 3, sessionId: TokenID(hi: 3, lo: 1), refreshJti: TokenID(hi: 3, lo: 2), expiresAt: Self.base + 86_400_000_000)),
            .chatStarted(ChatStarted(conversation: 1, userA: 1, userB: 2)),
            .chatStarted(ChatStarted(conversation: 2, userA: 3, userB: 2)),
            try message(1, 1, 2, "hello bob ✓", "c-1"),
            try message(1, 2, 1, Self.longText, nil),
            try message(2, 3, 2, "from carol, soon erased", nil),
            .userErased(UserErased(userId: 3)),
        ]
        try store.destroy([3])
        let records = events.enumerated().map { i, event in
            let r = event.record(timestamp: Self.base + Int64(i) * 1_000_000)
            return Record(seq: UInt64(i + 1), timestamp: r.timestamp, type: r.type, version: r.version, payload: r.payload)
        }
        try Data(frame(records)).write(to: URL(fileURLWithPath: dir + "/log.records"))
    }

    func load() throws -> (records: [Record], store: KeyStore) {
        let dir = try Self.fixtureDirectory()
        let records = try unframe([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/log.records"))))
        let master = try #require(try MasterKey.load(dataDirectory: dir, environment: [:], create: false))
        return (records, try KeyStore.openReadOnly(dataDirectory: dir, master: master))
    }

    @Test func schema2LogReplaysAndOpensWithItsKeys() throws {
        let (records, store) = try load()
        #expect(records.count == 11)
        let set = try ProjectionSet.rebuild(scan: scanner(records))
        #expect(set.plaintextRecords == 0)
        #expect(set.users.count == 3 && set.users.erasedIds == [3])
        #expect(set.users.userId(nameKey: store.nameIndex.nameKey(for: "ålice")) == 1)
        #expect(set.users.userId(nameKey: store.nameIndex.nameKey(for: "CAROL")) == 3, "an erased name stays taken")
        #expect(set.sessions.session(TokenID(hi: 3, lo: 1))?.state == .accountDeleted)
        #expect(set.conversations.messageSeqs(in: 1) == [8, 9])

        let reader = SealedFieldReader(store: store)
        var texts: [String?] = []
        var names: [String?] = []
        for record in records {
            switch try Event.decode(record) {
            case .userRegistered(let e):
                guard case let .sealed(_, box) = e.account else { Issue.record("not sealed"); continue }
                if case let .clear(bytes) = reader.read(box, field: .account, owner: e.userId) {
                    names.append(try AccountFields(bytes: bytes).username)
                } else {
                    names.append(nil)
                }
            case .messageSent(let m):
                guard case let .sealed(box) = m.body else { Issue.record("not sealed"); continue }
                if case let .clear(bytes) = reader.read(box, field: .messageText, owner: m.senderId) {
                    texts.append(String(decoding: bytes, as: UTF8.self))
                } else {
                    #expect(reader.read(box, field: .messageText, owner: m.senderId) == .erased)
                    texts.append(nil)
                }
            default:
                break
            }
        }
        #expect(names == ["Ålice", "bob", nil])
        #expect(texts == ["hello bob ✓", Self.longText, nil])
        // And the fold of the decoded events is the fold of the records.
        var live = ProjectionSet()
        for r in records { live.apply(try Event.decode(r), seq: r.seq, timestamp: r.timestamp) }
        #expect(live == set)
    }
}
