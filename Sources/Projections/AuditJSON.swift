extension Event {
    /// One JSON object per event for audits, keys in a fixed order:
    /// `{"seq":5,"time":"…Z","type":"MessageSent","version":2,…fields}`.
    ///
    /// Password hashes and refresh-token ids are `"<redacted>"` unless `includeSecrets`.
    /// `recordVersion` is the version the record was stored with (the event itself
    /// is always in the current shape after upcasting); it defaults to the current one.
    public func auditJSON(seq: UInt64, timestamp: Int64, includeSecrets: Bool, recordVersion: UInt16? = nil) -> String {
        var j = JSONWriter()
        j.beginObject()
        j.field("seq", seq)
        j.field("time", time: timestamp)
        j.field("type", typeName)
        j.field("version", recordVersion ?? version)
        func secret(_ key: String, _ value: String) {
            j.field(key, includeSecrets ? value : "<redacted>")
        }
        switch self {
        case .userRegistered(let e):
            j.field("user_id", e.userId)
            j.field("username", e.username)
            secret("password_hash", e.passwordHash)
        case .userLoggedIn(let e):
            j.field("user_id", e.userId)
            j.field("session_id", e.sessionId.hex)
            secret("refresh_jti", e.refreshJti.hex)
            j.field("expires_at", time: e.expiresAt)
        case .tokenRefreshed(let e):
            j.field("session_id", e.sessionId.hex)
            secret("retired_jti", e.retiredJti.hex)
            secret("new_jti", e.newJti.hex)
            j.field("expires_at", time: e.expiresAt)
        case .sessionRevoked(let e):
            j.field("session_id", e.sessionId.hex)
            secret("retired_jti", e.retiredJti.hex)
        case .userLoggedOut(let e):
            j.field("session_id", e.sessionId.hex)
        case .socketConnected(let e):
            j.field("user_id", e.userId)
            j.field("socket_id", e.socketId)
        case .socketDisconnected(let e):
            j.field("user_id", e.userId)
            j.field("socket_id", e.socketId)
        case .serverStarted(let e):
            j.field("epoch", e.epoch)
        case .chatStarted(let e):
            j.field("conversation_id", publicConversationId(e.conversation))
            j.field("conversation", e.conversation)
            j.field("user_a", e.userA)
            j.field("user_b", e.userB)
        case .messageSent(let e):
            j.field("conversation_id", publicConversationId(e.conversation))
            j.field("conversation", e.conversation)
            j.field("sender_id", e.senderId)
            j.field("receiver_id", e.receiverId)
            j.field("text", e.text)
            j.key("client_id")
            if let clientId = e.clientId { j.string(clientId) } else { j.null() }
        }
        j.endObject()
        return j.text
    }
}
