import Foundation
import EventLog
import Projections

/// A small known log under `<tmp>/data/log`, written through `EventLog` in several
/// batches and segments, plus the events it holds so tests can build the live state.
struct CLIFixture {
    static let base: Int64 = 1_767_225_600_000_000  // 2026-01-01T00:00:00Z
    static let second: Int64 = 1_000_000
    static let passwordHash = "pbkdf2_sha256$600000$saltsalt$SECRETHASHVALUE"
    static let alice: UInt32 = 1
    static let bob: UInt32 = 2
    static let carol: UInt32 = 3
    static let s1 = TokenID(hi: 0x5E55, lo: 1)
    static let s2 = TokenID(hi: 0x5E55, lo: 2)
    static let s3 = TokenID(hi: 0x5E55, lo: 3)
    static let j1 = TokenID(hi: 0x0717, lo: 0xAAAA_0001)
    static let j2 = TokenID(hi: 0x0717, lo: 0xAAAA_0002)
    static let j3 = TokenID(hi: 0x0717, lo: 0xAAAA_0003)
    static let j4 = TokenID(hi: 0x0717, lo: 0xAAAA_0004)

    let dir = TempDir()
    var dataDir: String { dir.path + "/data" }
    var logDir: String { dataDir + "/log" }
    /// `events[i]` is at seq i + 1, stamped `base + (i + 1) s`.
    let events: [Event]

    static func timestamp(ofSeq seq: UInt64) -> Int64 { base + Int64(seq) * second }

    /// The fixed story: three users, two sessions for alice and bob, two chats, messages,
    /// a refresh, a logout, then `extraMessages` more messages to fill several segments.
    static func story(extraMessages: Int = 40) -> [Event] {
        var e: [Event] = [
            .userRegistered(UserRegistered(userId: alice, username: "alice", passwordHash: passwordHash)),
            .userRegistered(UserRegistered(userId: bob, username: "Bob", passwordHash: passwordHash)),
            .userRegistered(UserRegistered(userId: carol, username: "carol", passwordHash: passwordHash)),
            .serverStarted(ServerStarted(epoch: 1)),
            .userLoggedIn(UserLoggedIn(userId: alice, sessionId: s1, refreshJti: j1, expiresAt: base + 3600 * second)),  // 5
            .userLoggedIn(UserLoggedIn(userId: bob, sessionId: s2, refreshJti: j2, expiresAt: base + 86_400 * second)),
            .socketConnected(SocketConnected(userId: alice, socketId: 1)),
            .chatStarted(ChatStarted(conversation: 1, userA: alice, userB: bob)),
            .messageSent(MessageSent(conversation: 1, senderId: alice, receiverId: bob, text: "hello bob", clientId: "m1")),
            .messageSent(MessageSent(conversation: 1, senderId: bob, receiverId: alice, text: "hi \"alice\"")),  // 10
            .tokenRefreshed(TokenRefreshed(sessionId: s1, retiredJti: j1, newJti: j3, expiresAt: base + 7200 * second)),
            .chatStarted(ChatStarted(conversation: 2, userA: bob, userB: carol)),
            .messageSent(MessageSent(conversation: 2, senderId: bob, receiverId: carol, text: "hey carol")),
            .userLoggedOut(UserLoggedOut(sessionId: s2)),
            .userLoggedIn(UserLoggedIn(userId: carol, sessionId: s3, refreshJti: j4, expiresAt: base + 86_400 * second)),  // 15
            .socketDisconnected(SocketDisconnected(userId: alice, socketId: 1)),
        ]
        for i in 0..<extraMessages {
            let (conversation, from, to) = i % 2 == 0 ? (UInt32(1), alice, bob) : (UInt32(2), carol, bob)
            e.append(.messageSent(MessageSent(conversation: conversation, senderId: from, receiverId: to,
                                              text: "message \(i) " + String(repeating: "lorem ipsum ", count: 4))))
        }
        return e
    }

    /// Writes the story in batches of 5 into segments of about 1 KiB.
    static func make(extraMessages: Int = 40) async throws -> CLIFixture {
        let fixture = CLIFixture(events: story(extraMessages: extraMessages))
        let log = try EventLog.open(directory: fixture.logDir,
                                    options: EventLogOptions(segmentBytes: 1024, durability: .never))
        var seq: UInt64 = 1
        var start = 0
        while start < fixture.events.count {
            let chunk = fixture.events[start..<min(start + 5, fixture.events.count)]
            var records: [NewRecord] = []
            for event in chunk {
                records.append(event.record(timestamp: timestamp(ofSeq: seq)))
                seq += 1
            }
            try await log.append(records)
            start += chunk.count
        }
        await log.close()
        return fixture
    }

    /// The state live traffic built, applying events one by one, through `lastSeq`.
    func liveState(through lastSeq: UInt64 = .max) -> ProjectionSet {
        var set = ProjectionSet()
        for (i, event) in events.enumerated() where UInt64(i + 1) <= lastSeq {
            set.apply(event, seq: UInt64(i + 1), timestamp: Self.timestamp(ofSeq: UInt64(i + 1)))
        }
        return set
    }

    /// Seqs of the events that satisfy `predicate`.
    func seqs(where predicate: (Event) -> Bool) -> [UInt64] {
        events.enumerated().filter { predicate($0.element) }.map { UInt64($0.offset + 1) }
    }

    var segmentFiles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: logDir)) ?? [])
            .filter { $0.hasSuffix(".seg") }.sorted().map { logDir + "/" + $0 }
    }
}
