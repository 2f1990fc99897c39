/// Canonical binary form of each view: the body of snapshots and the input of digests.
///
/// Canonical means independent of hash-table order (keys are sorted), so equal
/// states always give equal bytes. Indexes that can be derived (name → id, pair →
/// conversation, per-user lists) are not stored; decoding rebuilds them.
protocol CanonicalEncoding {
    func encode(into w: inout ByteWriter)
    init(decoding r: inout ByteReader) throws
}

extension CanonicalEncoding {
    var canonicalBytes: [UInt8] {
        var w = ByteWriter(capacity: 4096)
        encode(into: &w)
        return w.bytes
    }
}

extension UsersView: CanonicalEncoding {
    func encode(into w: inout ByteWriter) {
        w.int(users.count)
        for (i, u) in users.enumerated() {
            switch u.account {
            case let .plain(username, passwordHash):
                w.u8(0)
                w.string(username)
                w.string(passwordHash)
            case let .sealed(nameKey, box):
                w.u8(1)
                w.nameKey(nameKey)
                w.blob(box)
            }
            w.bool(u.erased)
            w.time(u.registeredAt)
            w.optionalTime(u.lastLogin)
            w.time(activity[i])
        }
    }

    init(decoding r: inout ByteReader) throws {
        self.init()
        let n = try r.count(minItemSize: 20)
        users.reserveCapacity(n)
        activity.reserveCapacity(n)
        for _ in 0..<n {
            let account: UserRegistered.Account
            switch try r.u8() {
            case 0: account = .plain(username: try r.string(), passwordHash: try r.string())
            case 1: account = .sealed(nameKey: try r.nameKey(), box: Array(try r.blob()))
            case let kind: throw EventDecodingError("invalid account kind \(kind)")
            }
            let erased = try r.bool()
            let registeredAt = try r.time()
            let lastLogin = try r.optionalTime()
            let lastActivity = try r.time()
            let id = nextUserId
            register(UserRegistered(userId: id, account: account), at: registeredAt)
            if erased { erase(id) }
            users[users.count - 1].lastLogin = lastLogin
            activity[activity.count - 1] = lastActivity
        }
    }
}

extension SessionsView: CanonicalEncoding {
    func encode(into w: inout ByteWriter) {
        w.int(sessions.count)
        for id in sessions.keys.sorted() {
            guard let s = sessions[id] else { continue }
            w.token(s.sessionId)
            w.varint(s.userId)
            w.token(s.currentJti)
            w.time(s.expiresAt)
            w.u8(s.state.rawValue)
            w.time(s.createdAt)
            w.optionalTime(s.endedAt)
            w.int(s.retiredJtis.count)
            for jti in s.retiredJtis { w.token(jti) }
        }
    }

    init(decoding r: inout ByteReader) throws {
        self.init()
        let n = try r.count(minItemSize: 52)  // id, user, jti, expiry, state, start, no end, no retired jtis
        sessions.reserveCapacity(n)
        for _ in 0..<n {
            let sessionId = try r.token()
            let userId = try r.varint32()
            let currentJti = try r.token()
            let expiresAt = try r.time()
            let rawState = try r.u8()
            guard let state = SessionState(rawValue: rawState) else {
                throw EventDecodingError("invalid session state \(rawState)")
            }
            let createdAt = try r.time()
            let endedAt = try r.optionalTime()
            let retiredCount = try r.count(minItemSize: 16)
            var retired: [TokenID] = []
            retired.reserveCapacity(retiredCount)
            for _ in 0..<retiredCount { retired.append(try r.token()) }
            sessions[sessionId] = SessionInfo(
                sessionId: sessionId, userId: userId, currentJti: currentJti, retiredJtis: retired,
                expiresAt: expiresAt, state: state, createdAt: createdAt, endedAt: endedAt)
            if state == .open { openByUser[userId, default: []].insert(sessionId) }
        }
    }
}

extension PresenceView: CanonicalEncoding {
    func encode(into w: inout ByteWriter) {
        w.varint(epoch)
        w.optionalTime(epochStartedAt)
        w.int(sockets.count)
        for user in sockets.keys.sorted() {
            let ids = sockets[user] ?? []
            w.varint(user)
            w.int(ids.count)
            for id in ids.sorted() { w.varint(id) }
        }
    }

    init(decoding r: inout ByteReader) throws {
        self.init()
        epoch = try r.varint()
        epochStartedAt = try r.optionalTime()
        let n = try r.count(minItemSize: 3)
        for _ in 0..<n {
            let user = try r.varint32()
            let count = try r.count(minItemSize: 1)
            guard count > 0 else { throw EventDecodingError("empty socket set") }
            var ids = Set<UInt64>(minimumCapacity: count)
            for _ in 0..<count { ids.insert(try r.varint()) }
            sockets[user] = ids
        }
    }
}

extension FriendshipView: CanonicalEncoding {
    func encode(into w: inout ByteWriter) {
        w.int(adjacency.count)
        for user in adjacency.keys.sorted() {
            let friends = adjacency[user] ?? []
            w.varint(user)
            w.int(friends.count)
            for f in friends.sorted() { w.varint(f) }
        }
    }

    init(decoding r: inout ByteReader) throws {
        self.init()
        let n = try r.count(minItemSize: 3)
        adjacency.reserveCapacity(n)
        for _ in 0..<n {
            let user = try r.varint32()
            let count = try r.count(minItemSize: 1)
            guard count > 0 else { throw EventDecodingError("empty friend set") }
            var friends = Set<UInt32>(minimumCapacity: count)
            for _ in 0..<count { friends.insert(try r.varint32()) }
            adjacency[user] = friends
        }
    }
}

extension ConversationsView: CanonicalEncoding {
    /// The canonical encoding: the conversations, then the client-id index (snapshots keep
    /// the two as sections of their own, so they decode on two threads).
    func encode(into w: inout ByteWriter) {
        encodeConversations(into: &w)
        clientIndex.encode(into: &w)
    }

    init(decoding r: inout ByteReader) throws {
        try self.init(decodingConversations: &r)
        clientIndex = try ClientIdIndex(decoding: &r)
    }

    func encodeConversations(into w: inout ByteWriter) {
        w.int(conversations.count)
        for c in conversations {
            w.varint(c.userA)
            w.varint(c.userB)
            w.time(c.startedAt)
            w.varint(c.startedSeq)
            w.time(c.lastMessageTime)
            w.int(c.seqs.count)
            // Deltas: positions are ascending and mostly close together.
            var previous: UInt64 = 0
            for i in 0..<c.seqs.count {
                let s = c.seqs[i]
                w.varint(s - previous)
                previous = s
            }
        }
    }

    /// The conversations part alone; the client-id index is left empty.
    init(decodingConversations r: inout ByteReader) throws {
        self.init()
        let n = try r.count(minItemSize: 20)  // two ids, two times, a seq, a count
        conversations.reserveCapacity(n)
        byPair.reserveCapacity(n)
        for _ in 0..<n {
            let userA = try r.varint32()
            let userB = try r.varint32()
            let startedAt = try r.time()
            let startedSeq = try r.varint()
            let before = conversations.count
            start(ChatStarted(conversation: nextConversationNumber, userA: userA, userB: userB),
                  seq: startedSeq, timestamp: startedAt)
            guard conversations.count == before + 1 else {
                throw EventDecodingError("duplicate conversation pair in snapshot")
            }
            let lastMessageTime = try r.time()
            let count = try r.count(minItemSize: 1)
            let seqs = try MessagePositions(base: startedSeq, deltas: &r, count: count)
            let i = conversations.count - 1
            conversations[i].lastMessageTime = lastMessageTime
            conversations[i].seqs = seqs
            messageCount += count
        }
    }
}
