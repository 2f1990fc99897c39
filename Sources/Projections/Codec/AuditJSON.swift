extension Event {
    /// One JSON object per event for audits, keys in a fixed order:
    /// `{"seq":5,"time":"…Z","type":"MessageSent","version":2,…fields}`.
    ///
    /// Password hashes and refresh-token ids are `"<redacted>"` unless `includeSecrets`.
    /// Sealed fields (usernames, password hashes, message texts) are `null`, with `"erased":
    /// true` where the owner's key is destroyed and `"sealed": true` where `reader` may not
    /// open them; plaintext fields of logs from before encryption print as they are.
    /// `recordVersion` is the version the record was stored with (the event itself
    /// is always in the current shape after upcasting); it defaults to the current one.
    public func auditJSON(seq: UInt64, timestamp: Int64, includeSecrets: Bool, recordVersion: UInt16? = nil,
                          reader: SealedFieldReader = SealedFieldReader(keyed: nil)) -> String {
        var j = JSONWriter()
        j.beginObject()
        j.field("seq", seq)
        j.field("time", time: timestamp)
        j.field("type", typeName)
        j.field("version", recordVersion ?? version)
        func secret(_ key: String, _ value: String) {
            j.field(key, includeSecrets ? value : "<redacted>")
        }
        func erasedFlags(_ opened: OpenedField) {
            j.field("erased", bool: opened == .erased)
            if opened == .hidden { j.field("sealed", bool: true) }
        }
        switch self {
        case .userRegistered(let e):
            j.field("user_id", e.userId)
            switch e.account {
            case let .plain(username, passwordHash):
                j.field("username", username)
                secret("password_hash", passwordHash)
            case let .sealed(_, box):
                let opened = reader.read(box, field: .account, owner: e.userId)
                let fields: AccountFields? = if case let .clear(bytes) = opened { try? AccountFields(bytes: bytes) } else { nil }
                j.field("username", optional: fields?.username)
                if let fields { secret("password_hash", fields.passwordHash) } else { j.field("password_hash", optional: nil) }
                erasedFlags(opened)
            }
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
            if e.shared { j.field("shared", bool: true) }
        case .nodeLeft(let e):
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
            switch e.body {
            case .plain(let text):
                j.field("text", text)
            case .sealed(let box):
                let opened = reader.read(box, field: .messageText, owner: e.senderId)
                if case let .clear(bytes) = opened {
                    j.field("text", String(decoding: bytes, as: UTF8.self))
                } else {
                    j.field("text", optional: nil)
                }
                erasedFlags(opened)
            }
            j.field("client_id", optional: e.clientId)
        case .userErased(let e):
            j.field("user_id", e.userId)
        }
        j.endObject()
        return j.text
    }
}
