import EventLog

// Payload layouts (all integers little-endian; "varint" is unsigned LEB128;
// "string" is a varint byte count then UTF-8; "token" is hi then lo as u64;
// "time" is i64 microseconds). These layouts are frozen: change one only by
// adding a new version and keeping the old decoder.
//
//  1 UserRegistered v1     varint userId, string username, string passwordHash
//  1 UserRegistered v2     varint userId, u64 nameKey.hi, u64 nameKey.lo, blob sealed AccountFields
//  2 UserLoggedIn v1       varint userId, token sessionId, token refreshJti, time expiresAt
//  3 TokenRefreshed v1     token sessionId, token retiredJti, token newJti, time expiresAt
//  4 SessionRevoked v1     token sessionId, token retiredJti
//  5 UserLoggedOut v1      token sessionId
//  6 SocketConnected v1    varint userId, varint socketId
//  7 SocketDisconnected v1 varint userId, varint socketId
//  8 ServerStarted v1      varint epoch
//  8 ServerStarted v2      varint epoch, u8 shared (0|1)
//  9 ChatStarted v1        varint conversation, varint userA, varint userB
// 10 MessageSent v1        varint conversation, varint senderId, varint receiverId, string text
// 10 MessageSent v2        v1 fields, then u8 hasClientId (0|1) [, string clientId]
// 10 MessageSent v3        varint conversation, varint senderId, varint receiverId, blob sealed text,
//                          u8 hasClientId (0|1) [, string clientId]
// 11 UserErased v1         varint userId
// 12 NodeLeft v1           varint epoch
//
// "blob" is a varint byte count then raw bytes; sealed fields are `SealedBox` bytes.

extension Event {
    /// The payload in the current schema version.
    public func encodePayload() -> [UInt8] {
        var w = ByteWriter(capacity: 48)
        switch self {
        case .userRegistered(let e):
            w.varint(e.userId)
            switch e.account {
            case let .plain(username, passwordHash):
                w.string(username)
                w.string(passwordHash)
            case let .sealed(nameKey, box):
                w.nameKey(nameKey)
                w.blob(box)
            }
        case .userLoggedIn(let e):
            w.varint(e.userId)
            w.token(e.sessionId)
            w.token(e.refreshJti)
            w.time(e.expiresAt)
        case .tokenRefreshed(let e):
            w.token(e.sessionId)
            w.token(e.retiredJti)
            w.token(e.newJti)
            w.time(e.expiresAt)
        case .sessionRevoked(let e):
            w.token(e.sessionId)
            w.token(e.retiredJti)
        case .userLoggedOut(let e):
            w.token(e.sessionId)
        case .socketConnected(let e):
            w.varint(e.userId)
            w.varint(e.socketId)
        case .socketDisconnected(let e):
            w.varint(e.userId)
            w.varint(e.socketId)
        case .serverStarted(let e):
            w.varint(e.epoch)
            w.bool(e.shared)
        case .nodeLeft(let e):
            w.varint(e.epoch)
        case .chatStarted(let e):
            w.varint(e.conversation)
            w.varint(e.userA)
            w.varint(e.userB)
        case .messageSent(let e):
            w.varint(e.conversation)
            w.varint(e.senderId)
            w.varint(e.receiverId)
            switch e.body {
            case .plain(let text): w.string(text)
            case .sealed(let box): w.blob(box)
            }
            w.optionalString(e.clientId)
        case .userErased(let e):
            w.varint(e.userId)
        }
        return w.bytes
    }

    /// Decodes any version ever written, upcasting old ones to the current shape.
    /// Throws `EventDecodingError` for an unknown type or version, a short or
    /// over-long payload, or invalid UTF-8.
    public static func decode(type: UInt16, version: UInt16, payload: UnsafeRawBufferPointer) throws -> Event {
        guard let eventType = EventType(rawValue: type) else {
            throw EventDecodingError("unknown event type \(type)")
        }
        guard eventType.readableVersions.contains(version) else {
            throw EventDecodingError("unknown version \(version) of \(eventType.name)")
        }
        var r = ByteReader(payload)
        do {
            let event = try decodeFields(eventType, version: version, from: &r)
            try r.finish()
            return event
        } catch let error as EventDecodingError {
            throw error.prefixed("\(eventType.name) v\(version)")
        }
    }

    /// As `decode(type:version:payload:)`, with errors naming the record's seq.
    public static func decode(header: RecordHeader, payload: UnsafeRawBufferPointer) throws -> Event {
        do {
            return try decode(type: header.type, version: header.version, payload: payload)
        } catch let error as EventDecodingError {
            throw error.naming(seq: header.seq)
        }
    }

    /// Decodes a stored record, with errors naming its seq.
    public static func decode(_ record: Record) throws -> Event {
        do {
            return try record.payload.withUnsafeBytes {
                try decode(type: record.type, version: record.version, payload: $0)
            }
        } catch let error as EventDecodingError {
            throw error.naming(seq: record.seq)
        }
    }

    private static func decodeFields(_ type: EventType, version: UInt16, from r: inout ByteReader) throws -> Event {
        switch type {
        case .userRegistered:
            let userId = try r.varint32()
            if version == 1 {
                return .userRegistered(UserRegistered(userId: userId, username: try r.string(), passwordHash: try r.string()))
            }
            return .userRegistered(UserRegistered(
                userId: userId, account: .sealed(nameKey: try r.nameKey(), box: Array(try r.blob()))))
        case .userLoggedIn:
            return .userLoggedIn(UserLoggedIn(
                userId: try r.varint32(), sessionId: try r.token(), refreshJti: try r.token(), expiresAt: try r.time()))
        case .tokenRefreshed:
            return .tokenRefreshed(TokenRefreshed(
                sessionId: try r.token(), retiredJti: try r.token(), newJti: try r.token(), expiresAt: try r.time()))
        case .sessionRevoked:
            return .sessionRevoked(SessionRevoked(sessionId: try r.token(), retiredJti: try r.token()))
        case .userLoggedOut:
            return .userLoggedOut(UserLoggedOut(sessionId: try r.token()))
        case .socketConnected:
            return .socketConnected(SocketConnected(userId: try r.varint32(), socketId: try r.varint()))
        case .socketDisconnected:
            return .socketDisconnected(SocketDisconnected(userId: try r.varint32(), socketId: try r.varint()))
        case .serverStarted:
            let epoch = try r.varint()
            return .serverStarted(ServerStarted(epoch: epoch, shared: version >= 2 ? try r.bool() : false))
        case .nodeLeft:
            return .nodeLeft(NodeLeft(epoch: try r.varint()))
        case .chatStarted:
            return .chatStarted(ChatStarted(conversation: try r.varint32(), userA: try r.varint32(), userB: try r.varint32()))
        case .userErased:
            return .userErased(UserErased(userId: try r.varint32()))
        case .messageSent where version >= 3:
            let conversation = try r.varint32(), sender = try r.varint32(), receiver = try r.varint32()
            let box = Array(try r.blob())
            return .messageSent(MessageSent(
                conversation: conversation, senderId: sender, receiverId: receiver, body: .sealed(box),
                clientId: try r.optionalString()))
        case .messageSent:
            let v1 = MessageSentV1(
                conversation: try r.varint32(), senderId: try r.varint32(), receiverId: try r.varint32(),
                text: try r.string())
            guard version >= 2 else { return .messageSent(v1.upcast) }
            var message = v1.upcast
            message.clientId = try r.optionalString()
            return .messageSent(message)
        }
    }
}

/// The parts of a MessageSent that the views keep, read without building Strings.
struct MessageSummary {
    var conversation: UInt32
    var senderId: UInt32
    var receiverId: UInt32
    /// `clientIdKey(sender:clientId:)`, if the message has a client id.
    var clientKey: UInt64?

    /// Reads v1, v2 or v3 with the same checks as `Event.decode` (bounds, UTF-8 of plaintext,
    /// no trailing bytes); a sealed text is skipped, never opened.
    static func decode(version: UInt16, payload: UnsafeRawBufferPointer) throws -> MessageSummary {
        var r = ByteReader(payload)
        do {
            var summary = MessageSummary(
                conversation: try r.varint32(), senderId: try r.varint32(), receiverId: try r.varint32(),
                clientKey: nil)
            if version >= 3 { _ = try r.blob() } else { _ = try r.utf8Bytes() }
            if version >= 2, try r.bool() {
                summary.clientKey = clientIdKey(sender: summary.senderId, clientIdUTF8: try r.utf8Bytes())
            }
            try r.finish()
            return summary
        } catch let error as EventDecodingError {
            throw error.prefixed("\(EventType.messageSent.name) v\(version)")
        }
    }
}
