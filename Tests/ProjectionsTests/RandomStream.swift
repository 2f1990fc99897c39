@testable import EventLog
@testable import Projections

/// Generates plausible event streams the way a Ledger would (valid by construction),
/// with a sprinkling of events the views must ignore, and some MessageSent stored as v1.
struct RandomStream {
    struct Item {
        var event: Event
        var record: Record
    }

    var rng: SeededRNG
    var items: [Item] = []
    var now: Int64 = t0
    var userCount: UInt32 = 0
    var openSessions: [(sid: TokenID, user: UInt32, jti: TokenID, retired: [TokenID])] = []
    var sockets: [(user: UInt32, id: UInt64)] = []
    var nextSocket: UInt64 = 1
    var epoch: UInt64 = 0
    var conversations: [(UInt32, UInt32)] = []
    var pairs: Set<UInt64> = []

    init(seed: UInt64) { rng = SeededRNG(seed: seed) }

    mutating func token() -> TokenID { TokenID(hi: rng.next(), lo: rng.next()) }

    mutating func text() -> String {
        let alphabet: [String] = ["a", "b", "z", " ", "é", "😀", "\n", "\"", "\\", "日", "\u{01}"]
        let n = Int.random(in: 0...60, using: &rng)
        var s = ""
        for _ in 0..<n { s += alphabet.randomElement(using: &rng)! }
        return s
    }

    mutating func randomUser() -> UInt32 { UInt32.random(in: 1...max(userCount, 1), using: &rng) }

    mutating func emit(_ event: Event, v1: Bool = false) {
        now += Int64.random(in: 0...(5 * second), using: &rng)
        let seq = UInt64(items.count + 1)
        var r = event.record(timestamp: now)
        if v1, case .messageSent(let m) = event, case .plain(let text) = m.body {
            r.version = 1
            r.payload = messageSentV1Payload(conversation: m.conversation, sender: m.senderId, receiver: m.receiverId, text: text)
        }
        items.append(Item(event: event, record: Record(seq: seq, timestamp: now, type: r.type, version: r.version, payload: r.payload)))
    }

    mutating func step() {
        let roll = Int.random(in: 0..<100, using: &rng)
        if userCount < 2 || roll < 5 {
            userCount += 1
            emit(.userRegistered(UserRegistered(userId: userCount, username: "user\(userCount)\(["", "É", "_x"].randomElement(using: &rng)!)", passwordHash: "pbkdf2_sha256$1$\(rng.next())$h")))
        } else if roll < 12 {
            let user = randomUser()
            let s = (token(), user, token(), [TokenID]())
            openSessions.append(s)
            emit(.userLoggedIn(UserLoggedIn(userId: user, sessionId: s.0, refreshJti: s.2, expiresAt: now + Int64.random(in: minute...day, using: &rng))))
        } else if roll < 17, !openSessions.isEmpty {
            let i = Int.random(in: 0..<openSessions.count, using: &rng)
            let newJti = token()
            let old = openSessions[i].jti
            openSessions[i].retired.append(old)
            openSessions[i].jti = newJti
            emit(.tokenRefreshed(TokenRefreshed(sessionId: openSessions[i].sid, retiredJti: old, newJti: newJti, expiresAt: now + Int64.random(in: minute...day, using: &rng))))
        } else if roll < 19, !openSessions.isEmpty {
            let s = openSessions.remove(at: Int.random(in: 0..<openSessions.count, using: &rng))
            if let reused = s.retired.last {
                emit(.sessionRevoked(SessionRevoked(sessionId: s.sid, retiredJti: reused)))
            } else {
                emit(.userLoggedOut(UserLoggedOut(sessionId: s.sid)))
            }
        } else if roll < 22, !openSessions.isEmpty {
            let s = openSessions.remove(at: Int.random(in: 0..<openSessions.count, using: &rng))
            emit(.userLoggedOut(UserLoggedOut(sessionId: s.sid)))
        } else if roll < 26 {
            let user = randomUser()
            sockets.append((user, nextSocket))
            emit(.socketConnected(SocketConnected(userId: user, socketId: nextSocket)))
            nextSocket += 1
        } else if roll < 29, !sockets.isEmpty {
            let s = sockets.remove(at: Int.random(in: 0..<sockets.count, using: &rng))
            emit(.socketDisconnected(SocketDisconnected(userId: s.user, socketId: s.id)))
        } else if roll < 30 {
            epoch += 1
            sockets.removeAll()
            emit(.serverStarted(ServerStarted(epoch: epoch)))
        } else if roll < 36 {
            let a = randomUser()
            let b = randomUser()
            guard a != b, !pairs.contains(ConversationsView.pairKey(a, b)) else { return }
            pairs.insert(ConversationsView.pairKey(a, b))
            conversations.append((a, b))
            emit(.chatStarted(ChatStarted(conversation: UInt32(conversations.count), userA: a, userB: b)))
        } else if roll < 38 {
            // Events a Ledger would never write: every path must ignore them alike.
            let bogus: [Event] = [
                .messageSent(MessageSent(conversation: UInt32(conversations.count + 5), senderId: 1, receiverId: 2, text: "x")),
                .tokenRefreshed(TokenRefreshed(sessionId: token(), retiredJti: token(), newJti: token(), expiresAt: now)),
                .userLoggedOut(UserLoggedOut(sessionId: token())),
                .socketDisconnected(SocketDisconnected(userId: 1, socketId: 999_999)),
                .userRegistered(UserRegistered(userId: userCount + 7, username: "ghost", passwordHash: "h")),
                .chatStarted(ChatStarted(conversation: 999, userA: 1, userB: 2)),
            ]
            emit(bogus.randomElement(using: &rng)!)
        } else if !conversations.isEmpty {
            let c = Int.random(in: 0..<conversations.count, using: &rng)
            var (a, b) = conversations[c]
            if Bool.random(using: &rng) { swap(&a, &b) }
            let asV1 = Int.random(in: 0..<10, using: &rng) == 0
            let clientId: String? = !asV1 && Bool.random(using: &rng) ? "cid-\(rng.next() % 1000)" : nil
            emit(.messageSent(MessageSent(conversation: UInt32(c + 1), senderId: a, receiverId: b, text: text(), clientId: clientId)), v1: asV1)
        }
    }

    static func make(seed: UInt64, count: Int) -> RandomStream {
        var s = RandomStream(seed: seed)
        while s.items.count < count { s.step() }
        return s
    }

    var records: [Record] { items.map(\.record) }

    func live(through last: Int? = nil) -> ProjectionSet {
        var set = ProjectionSet()
        for item in items.prefix(last ?? items.count) {
            set.apply(item.event, seq: item.record.seq, timestamp: item.record.timestamp)
        }
        return set
    }
}
