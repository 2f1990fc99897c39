import EventLog

/// All views plus the log position they reflect. The Ledger owns one; replay,
/// audits and snapshots build others. Value semantics make a copy a consistent
/// point-in-time snapshot for free.
public struct ProjectionSet: Sendable, Equatable {
    public internal(set) var users = UsersView()
    public internal(set) var sessions = SessionsView()
    public internal(set) var presence = PresenceView()
    public internal(set) var friendship = FriendshipView()
    public internal(set) var conversations = ConversationsView()
    /// Seq of the last applied record (0: none).
    public internal(set) var lastSeq: UInt64 = 0
    /// Timestamp of the last applied record.
    public internal(set) var lastTimestamp: Int64 = 0
    /// Registrations and messages folded in their plaintext shapes (a log from before
    /// personal fields were encrypted, which `serve` refuses).
    public internal(set) var plaintextRecords: UInt64 = 0

    public init() {}

    /// View names, in the order used by digests, dumps and snapshots.
    public static let viewNames = ["users", "sessions", "presence", "friendship", "conversations"]

    /// Each view's version; a snapshot written with other versions is ignored.
    public static let versions: [String: Int] = [
        "users": UsersView.version,
        "sessions": SessionsView.version,
        "presence": PresenceView.version,
        "friendship": FriendshipView.version,
        "conversations": ConversationsView.version,
    ]

    /// Applies one event at log position `seq` (live path: the Ledger calls this
    /// with the seq the record will get).
    public mutating func apply(_ event: Event, seq: UInt64, timestamp: Int64) {
        switch event {
        case .userRegistered, .userLoggedIn:
            users.apply(event, seq: seq, timestamp: timestamp)
            sessions.apply(event, seq: seq, timestamp: timestamp)
        case .tokenRefreshed(let e):
            sessions.apply(event, seq: seq, timestamp: timestamp)
            if let owner = sessions.session(e.sessionId)?.userId {
                users.noteActivity(owner, at: timestamp)
            }
        case .sessionRevoked, .userLoggedOut:
            sessions.apply(event, seq: seq, timestamp: timestamp)
        case .socketConnected, .socketDisconnected, .serverStarted, .nodeLeft:
            presence.apply(event, seq: seq, timestamp: timestamp)
        case .chatStarted:
            // Friends are users who share a conversation: only one the view accepted counts.
            let before = conversations.conversationCount
            conversations.apply(event, seq: seq, timestamp: timestamp)
            if conversations.conversationCount > before {
                friendship.apply(event, seq: seq, timestamp: timestamp)
            }
        case .messageSent:
            users.apply(event, seq: seq, timestamp: timestamp)
            conversations.apply(event, seq: seq, timestamp: timestamp)
        case .userErased:
            users.apply(event, seq: seq, timestamp: timestamp)
            sessions.apply(event, seq: seq, timestamp: timestamp)
        }
        if event.isPlaintextPersonal { plaintextRecords += 1 }
        lastSeq = seq
        lastTimestamp = timestamp
    }

    /// Decodes and applies one stored record. Records at or before `lastSeq` are
    /// skipped, so a replay may safely start before a snapshot's position.
    /// MessageSent takes a fast path that validates the payload like `Event.decode`
    /// but never materialises the text, which the views do not keep.
    public mutating func apply(seq: UInt64, timestamp: Int64, type: UInt16, version: UInt16, payload: UnsafeRawBufferPointer) throws {
        guard seq > lastSeq else { return }
        do {
            if type == EventType.messageSent.rawValue, EventType.messageSent.readableVersions.contains(version) {
                let m = try MessageSummary.decode(version: version, payload: payload)
                applyMessage(m, seq: seq, timestamp: timestamp, plaintext: version < 3)
            } else {
                apply(try Event.decode(type: type, version: version, payload: payload), seq: seq, timestamp: timestamp)
            }
        } catch let error as EventDecodingError {
            throw error.naming(seq: seq)
        }
    }

    /// The MessageSent fast path: what the views keep of a message, without its text.
    mutating func applyMessage(_ m: MessageSummary, seq: UInt64, timestamp: Int64, plaintext: Bool) {
        guard seq > lastSeq else { return }
        if plaintext { plaintextRecords += 1 }
        users.noteActivity(m.senderId, at: timestamp)
        conversations.appendMessage(
            conversation: m.conversation, sender: m.senderId, receiver: m.receiverId,
            clientKey: m.clientKey, seq: seq, timestamp: timestamp)
        lastSeq = seq
        lastTimestamp = timestamp
    }

    public mutating func apply(header: RecordHeader, payload: UnsafeRawBufferPointer) throws {
        try apply(seq: header.seq, timestamp: header.timestamp, type: header.type, version: header.version, payload: payload)
    }

    public mutating func apply(_ record: Record) throws {
        try record.payload.withUnsafeBytes {
            try apply(seq: record.seq, timestamp: record.timestamp, type: record.type, version: record.version, payload: $0)
        }
    }

    // MARK: Queries that need more than one view

    /// At least one open, unexpired session at `now`.
    public func isOnline(_ userId: UInt32, now: Int64) -> Bool { sessions.isOnline(userId, now: now) }

    /// At least one open socket in the current server epoch.
    public func isConnected(_ userId: UInt32) -> Bool { presence.isConnected(userId) }

    /// Online users ordered by `name` (ties, which case-insensitive uniqueness rules out, by
    /// id); users without a name are left out. Filters and sorts on demand: a few ms for 10k
    /// users. The default names are those of plaintext accounts (old logs, audits).
    public func onlineUsers(now: Int64, name: ((UInt32) -> String?)? = nil) -> [UInt32] {
        let ids = sessions.onlineUserIds(now: now)
        var named: [(name: String, id: UInt32)] = []
        named.reserveCapacity(ids.count)
        for id in ids {
            if let n = name?(id) ?? users.username(of: id) { named.append((n, id)) }
        }
        named.sort { $0.name != $1.name ? $0.name < $1.name : $0.id < $1.id }
        return named.map(\.id)
    }

    /// Friend suggestions ranked with each user's last activity; erased users are never
    /// suggested (nobody can start a chat with them), though they still count as mutual friends.
    public func suggestions(for userId: UInt32, limit: Int) -> [Suggestion] {
        friendship.suggestions(for: userId, limit: limit, userCount: users.count,
                               eligible: { users.isActive($0) }) { users.lastActivity(of: $0) }
    }
}
