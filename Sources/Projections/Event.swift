import EventLog

/// Everything that ever happens in chat-es. The log stores these; every view is a fold over them.
public enum Event: Sendable, Equatable {
    case userRegistered(UserRegistered)
    case userLoggedIn(UserLoggedIn)
    case tokenRefreshed(TokenRefreshed)
    case sessionRevoked(SessionRevoked)
    case userLoggedOut(UserLoggedOut)
    case socketConnected(SocketConnected)
    case socketDisconnected(SocketDisconnected)
    case serverStarted(ServerStarted)
    case chatStarted(ChatStarted)
    case messageSent(MessageSent)

    public var type: EventType {
        switch self {
        case .userRegistered: .userRegistered
        case .userLoggedIn: .userLoggedIn
        case .tokenRefreshed: .tokenRefreshed
        case .sessionRevoked: .sessionRevoked
        case .userLoggedOut: .userLoggedOut
        case .socketConnected: .socketConnected
        case .socketDisconnected: .socketDisconnected
        case .serverStarted: .serverStarted
        case .chatStarted: .chatStarted
        case .messageSent: .messageSent
        }
    }

    /// The numeric type id stored in the record header.
    public var typeId: UInt16 { type.rawValue }

    /// The schema version `encodePayload()` writes.
    public var version: UInt16 { type.currentVersion }

    public var typeName: String { type.name }

    public static func typeName(for typeId: UInt16) -> String? {
        EventType(rawValue: typeId)?.name
    }

    /// Case-insensitive reverse of `typeName(for:)`.
    public static func typeId(named name: String) -> UInt16? {
        EventType(name: name)?.rawValue
    }

    /// A record ready to append: current type id, version and payload.
    public func record(timestamp: Int64) -> NewRecord {
        NewRecord(timestamp: timestamp, type: typeId, version: version, payload: encodePayload())
    }
}
