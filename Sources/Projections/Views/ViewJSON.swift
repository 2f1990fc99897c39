extension ProjectionSet {
    /// A JSON dump of one view for operators (`users`, `sessions`, `presence`,
    /// `friendship`, `conversations`); nil for another name. Time-dependent fields
    /// (online, open) are evaluated at `now`. Never includes password hashes, jtis, or any
    /// sealed field (only the names of plaintext accounts from logs before encryption).
    public func viewJSON(_ name: String, now: Int64) -> String? {
        var j = JSONWriter(capacity: 4096)
        j.beginObject()
        j.field("view", name)
        j.field("position", lastSeq)
        switch name {
        case "users": usersJSON(&j)
        case "sessions": sessionsJSON(&j, now: now)
        case "presence": presenceJSON(&j, now: now)
        case "friendship": friendshipJSON(&j)
        case "conversations": conversationsJSON(&j)
        default: return nil
        }
        j.endObject()
        return j.text
    }

    private func usersJSON(_ j: inout JSONWriter) {
        j.field("count", int: users.count)
        j.key("users")
        j.beginArray()
        for u in users.all {
            j.beginObject()
            j.field("id", u.id)
            // A sealed name needs its key, which this fold never has: null (see `replay --include-secrets`).
            j.field("username", optional: u.plainUsername)
            j.field("erased", bool: u.erased)
            j.field("registered_at", time: u.registeredAt)
            j.field("last_login", time: u.lastLogin)
            j.field("last_activity", time: u.lastActivity)
            j.endObject()
        }
        j.endArray()
    }

    private func sessionsJSON(_ j: inout JSONWriter, now: Int64) {
        j.field("count", int: sessions.count)
        j.key("sessions")
        j.beginArray()
        for id in sessions.sessions.keys.sorted() {
            guard let s = sessions.session(id) else { continue }
            j.beginObject()
            j.field("session_id", s.sessionId.hex)
            j.field("user_id", s.userId)
            j.field("state", String(describing: s.state))
            j.field("open", bool: s.isOpen(now: now))
            j.field("created_at", time: s.createdAt)
            j.field("expires_at", time: s.expiresAt)
            j.field("ended_at", time: s.endedAt)
            j.field("refreshes", int: s.retiredJtis.count)
            j.endObject()
        }
        j.endArray()
    }

    private func presenceJSON(_ j: inout JSONWriter, now: Int64) {
        j.field("epoch", presence.epoch)
        j.field("epoch_started_at", time: presence.epochStartedAt)
        j.key("online")
        j.beginArray()
        for id in onlineUsers(now: now, name: { users.username(of: $0) ?? "" }) {
            j.beginObject()
            j.field("id", id)
            j.field("username", optional: users.username(of: id))
            j.field("sessions", int: sessions.openSessionCount(id, now: now))
            j.field("connected", bool: presence.isConnected(id))
            j.endObject()
        }
        j.endArray()
        j.key("connected")
        j.beginArray()
        for id in presence.connectedUserIds {
            j.beginObject()
            j.field("id", id)
            j.field("sockets", int: presence.connectedSocketCount(id))
            j.endObject()
        }
        j.endArray()
    }

    private func friendshipJSON(_ j: inout JSONWriter) {
        j.field("friendships", int: friendship.edgeCount)
        j.key("users")
        j.beginArray()
        for user in friendship.adjacency.keys.sorted() {
            j.beginObject()
            j.field("id", user)
            j.key("friends")
            j.beginArray()
            for f in friendship.sortedFriends(of: user) { j.unsigned(f) }
            j.endArray()
            j.endObject()
        }
        j.endArray()
    }

    private func conversationsJSON(_ j: inout JSONWriter) {
        j.field("count", int: conversations.conversationCount)
        j.field("messages", int: conversations.messageCount)
        j.key("conversations")
        j.beginArray()
        var number: UInt32 = 1
        while let c = conversations.conversation(number) {
            j.beginObject()
            j.field("conversation_id", c.id)
            j.field("number", c.number)
            j.key("participants")
            j.beginArray()
            j.unsigned(c.userA)
            j.unsigned(c.userB)
            j.endArray()
            j.field("started_at", time: c.startedAt)
            j.field("message_count", int: c.messageCount)
            j.key("last_message_seq")
            if let last = c.lastMessageSeq { j.unsigned(last) } else { j.null() }
            j.field("last_message_time", time: c.lastMessageTime)
            j.endObject()
            number += 1
        }
        j.endArray()
    }
}
