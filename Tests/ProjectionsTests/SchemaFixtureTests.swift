import Foundation
import Testing
@testable import EventLog
@testable import Projections

/// Logs written by released schemas must replay forever. `Fixtures/schema1.records`
/// holds records as schema release 1 wrote them (MessageSent v1, no client id), in
/// the RecordLayout framing. It is committed and frozen: never regenerate it; when a
/// schema changes, add a new fixture next to it.
@Suite struct SchemaFixtureTests {
    static let fixtureName = "schema1.records"

    /// The events of the fixture, built with the v1 layout for MessageSent.
    static func schema1Records() -> [Record] {
        let base: Int64 = 1_795_547_515_000_000
        let events: [(Event?, [UInt8]?)] = [
            (.serverStarted(ServerStarted(epoch: 1)), nil),
            (.userRegistered(UserRegistered(userId: 1, username: "Alice", passwordHash: "pbkdf2_sha256$870000$c2FsdA$aGFzaA==")), nil),
            (.userRegistered(UserRegistered(userId: 2, username: "bob", passwordHash: "pbkdf2_sha256$870000$c2FsdDI$aGFzaDI=")), nil),
            (.userLoggedIn(UserLoggedIn(userId: 1, sessionId: TokenID(hi: 1, lo: 1), refreshJti: TokenID(hi: 1, lo: 2), expiresAt: base + 86_400_000_000)), nil),
            (.socketConnected(SocketConnected(userId: 1, socketId: 1)), nil),
            (.chatStarted(ChatStarted(conversation: 1, userA: 1, userB: 2)), nil),
            (nil, messageSentV1Payload(conversation: 1, sender: 1, receiver: 2, text: "hello bob")),
            (.userLoggedIn(UserLoggedIn(userId: 2, sessionId: TokenID(hi: 2, lo: 1), refreshJti: TokenID(hi: 2, lo: 2), expiresAt: base + 86_400_000_000)), nil),
            (nil, messageSentV1Payload(conversation: 1, sender: 2, receiver: 1, text: "hi Alice — ünïcode ✓")),
            (.tokenRefreshed(TokenRefreshed(sessionId: TokenID(hi: 1, lo: 1), retiredJti: TokenID(hi: 1, lo: 2), newJti: TokenID(hi: 1, lo: 3), expiresAt: base + 2 * 86_400_000_000)), nil),
            (.socketDisconnected(SocketDisconnected(userId: 1, socketId: 1)), nil),
            (.userLoggedOut(UserLoggedOut(sessionId: TokenID(hi: 2, lo: 1))), nil),
            (.sessionRevoked(SessionRevoked(sessionId: TokenID(hi: 1, lo: 1), retiredJti: TokenID(hi: 1, lo: 2))), nil),
        ]
        return events.enumerated().map { i, item in
            let ts = base + Int64(i) * 1_000_000
            if let payload = item.1 {
                return Record(seq: UInt64(i + 1), timestamp: ts, type: 10, version: 1, payload: payload)
            }
            let r = item.0!.record(timestamp: ts)
            return Record(seq: UInt64(i + 1), timestamp: ts, type: r.type, version: r.version, payload: r.payload)
        }
    }

    /// Writes the fixture into the source tree. Run once, by hand, only to create a
    /// new fixture: `CHAT_ES_WRITE_FIXTURES=1 swift test --filter writeFixture`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CHAT_ES_WRITE_FIXTURES"] == "1"))
    func writeFixture() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let url = dir.appendingPathComponent(Self.fixtureName)
        guard !FileManager.default.fileExists(atPath: url.path) else { return }  // frozen
        try Data(frame(Self.schema1Records())).write(to: url)
    }

    func loadFixture() throws -> [Record] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let data = try Data(contentsOf: url.appendingPathComponent(Self.fixtureName))
        return try unframe([UInt8](data))
    }

    @Test func schema1LogDecodes() throws {
        let records = try loadFixture()
        #expect(records.count == 13)
        #expect(records.filter { $0.type == 10 }.allSatisfy { $0.version == 1 })
        let messages = try records.filter { $0.type == 10 }.map { try Event.decode($0) }
        #expect(messages == [
            .messageSent(MessageSent(conversation: 1, senderId: 1, receiverId: 2, text: "hello bob", clientId: nil)),
            .messageSent(MessageSent(conversation: 1, senderId: 2, receiverId: 1, text: "hi Alice — ünïcode ✓", clientId: nil)),
        ])
        for r in records { _ = try Event.decode(r) }
    }

    @Test func schema1LogReplaysToTheExpectedState() throws {
        let records = try loadFixture()
        let set = try ProjectionSet.rebuild(scan: scanner(records))
        let base: Int64 = 1_795_547_515_000_000
        #expect(set.lastSeq == 13)
        #expect(set.users.count == 2)
        #expect(set.users.userId(named: "alice") == 1)
        #expect(set.users.user(2)?.account == .plain(username: "bob", passwordHash: "pbkdf2_sha256$870000$c2FsdDI$aGFzaDI="))
        #expect(set.plaintextRecords == 4, "two plaintext registrations and two plaintext messages")
        #expect(set.users.lastActivity(of: 1) == base + 9_000_000)  // the refresh
        #expect(set.users.lastActivity(of: 2) == base + 8_000_000)  // the reply
        #expect(set.conversations.conversation(between: 2, 1) == 1)
        #expect(set.conversations.messageSeqs(in: 1) == [7, 9])
        #expect(set.conversations.messageSeqs(forUser: 2, after: 7) == [9])
        #expect(set.friendship.areFriends(1, 2))
        #expect(set.sessions.session(TokenID(hi: 1, lo: 1))?.state == .revoked)
        #expect(set.sessions.session(TokenID(hi: 2, lo: 1))?.state == .loggedOut)
        #expect(set.onlineUsers(now: base + 20_000_000) == [])
        #expect(!set.isConnected(1))
        #expect(set.presence.epoch == 1)
        // Replaying the fixture gives what applying its (upcast) events live gives.
        var live = ProjectionSet()
        for r in records { live.apply(try Event.decode(r), seq: r.seq, timestamp: r.timestamp) }
        #expect(live == set)
        // And the state at seq 8 had both users online.
        let earlier = try ProjectionSet.rebuild(scan: scanner(records), asOf: .seq(8))
        #expect(earlier.onlineUsers(now: earlier.lastTimestamp) == [1, 2])
        #expect(earlier.isConnected(1))
    }
}
