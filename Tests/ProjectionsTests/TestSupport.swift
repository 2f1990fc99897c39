@testable import EventLog
@testable import Projections

/// SplitMix64: a tiny seeded generator so random tests replay identically.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A readable token id for hand-written scenarios.
func tok(_ n: UInt64) -> TokenID { TokenID(hi: 0xABCD, lo: n) }

let t0: Int64 = 1_795_547_515_000_000  // 2026-11-24T19:11:55Z
let second: Int64 = 1_000_000
let minute: Int64 = 60 * second
let hour: Int64 = 60 * minute
let day: Int64 = 24 * hour

/// Builds a scenario: applies events live with consecutive seqs and keeps them as records.
struct Scenario {
    var set = ProjectionSet()
    var records: [Record] = []
    var now: Int64 = t0

    @discardableResult
    mutating func add(_ event: Event, after delay: Int64 = second) -> UInt64 {
        now += delay
        let seq = UInt64(records.count + 1)
        set.apply(event, seq: seq, timestamp: now)
        let r = event.record(timestamp: now)
        records.append(Record(seq: seq, timestamp: now, type: r.type, version: r.version, payload: r.payload))
        return seq
    }

    mutating func register(_ name: String, after delay: Int64 = second) -> UInt32 {
        let id = set.users.nextUserId
        add(.userRegistered(UserRegistered(userId: id, username: name, passwordHash: "pbkdf2_sha256$1$s$h")), after: delay)
        return id
    }
}

/// A scanner with the shape of `EventLog.scan(from:_:)` over in-memory records (Sendable, so
/// the two-thread replay may run it on its reader thread).
func scanner(_ records: [Record]) -> SendableRecordScanner {
    { body in
        for r in records {
            let header = RecordHeader(seq: r.seq, timestamp: r.timestamp, type: r.type, version: r.version, payloadLength: r.payload.count)
            let keepGoing = try r.payload.withUnsafeBytes { try body(header, $0) }
            if !keepGoing { return }
        }
    }
}

/// Record framing as in EventLog's RecordLayout: u32 length, u64 seq, i64 ts, u16 type, u16 version, payload.
func frame(_ records: [Record]) -> [UInt8] {
    var out: [UInt8] = []
    func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    for r in records {
        le(UInt32(r.payload.count))
        le(r.seq)
        le(r.timestamp)
        le(r.type)
        le(r.version)
        out.append(contentsOf: r.payload)
    }
    return out
}

struct FramingError: Error {}

func unframe(_ bytes: [UInt8]) throws -> [Record] {
    var records: [Record] = []
    var i = 0
    func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let n = MemoryLayout<T>.size
        guard i + n <= bytes.count else { throw FramingError() }
        var v: T = 0
        for k in 0..<n { v |= T(bytes[i + k]) << (8 * k) }
        i += n
        return v
    }
    while i < bytes.count {
        let length = Int(try read(UInt32.self))
        let seq = try read(UInt64.self)
        let ts = try read(Int64.self)
        let type = try read(UInt16.self)
        let version = try read(UInt16.self)
        guard i + length <= bytes.count else { throw FramingError() }
        records.append(Record(seq: seq, timestamp: ts, type: type, version: version, payload: Array(bytes[i..<(i + length)])))
        i += length
    }
    return records
}

/// MessageSent as schema v1 laid it out (no client id); the production code only decodes v1.
func messageSentV1Payload(conversation: UInt32, sender: UInt32, receiver: UInt32, text: String) -> [UInt8] {
    var out: [UInt8] = []
    func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
    varint(UInt64(conversation))
    varint(UInt64(sender))
    varint(UInt64(receiver))
    varint(UInt64(text.utf8.count))
    out.append(contentsOf: text.utf8)
    return out
}

/// One example of every event type.
let sampleEvents: [Event] = [
    .userRegistered(UserRegistered(userId: 1, username: "Alice", passwordHash: "pbkdf2_sha256$870000$salt$aGFzaA==")),
    .userLoggedIn(UserLoggedIn(userId: 1, sessionId: tok(1), refreshJti: tok(2), expiresAt: t0 + day)),
    .tokenRefreshed(TokenRefreshed(sessionId: tok(1), retiredJti: tok(2), newJti: tok(3), expiresAt: t0 + 2 * day)),
    .sessionRevoked(SessionRevoked(sessionId: tok(1), retiredJti: tok(2))),
    .userLoggedOut(UserLoggedOut(sessionId: tok(4))),
    .socketConnected(SocketConnected(userId: 1, socketId: 77)),
    .socketDisconnected(SocketDisconnected(userId: 1, socketId: UInt64.max)),
    .serverStarted(ServerStarted(epoch: 3)),
    .chatStarted(ChatStarted(conversation: 1, userA: 1, userB: UInt32.max)),
    .messageSent(MessageSent(conversation: 1, senderId: 1, receiverId: 2, text: "héllo \"wörld\" 😀\n", clientId: "c-1")),
    .messageSent(MessageSent(conversation: 300, senderId: 70_000, receiverId: 2, text: "", clientId: nil)),
    .userRegistered(UserRegistered(userId: 2, account: .sealed(nameKey: NameKey(hi: 7, lo: .max), box: Array(0..<61)))),
    .messageSent(MessageSent(conversation: 1, senderId: 2, receiverId: 1, body: .sealed(Array(repeating: 9, count: 40)), clientId: "c-2")),
    .messageSent(MessageSent(conversation: 1, senderId: 2, receiverId: 1, body: .sealed([]), clientId: nil)),
    .userErased(UserErased(userId: 2)),
    .serverStarted(ServerStarted(epoch: 4, shared: true)),
    .nodeLeft(NodeLeft(epoch: 4)),
]
