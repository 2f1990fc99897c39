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
    case userErased(UserErased)
    case nodeLeft(NodeLeft)

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
        case .userErased: .userErased
        case .nodeLeft: .nodeLeft
        }
    }

    /// The numeric type id stored in the record header.
    public var typeId: UInt16 { type.rawValue }

    /// The schema version `encodePayload()` writes: the current one, but for the plaintext
    /// shapes of logs written before encryption (kept so tests and tools can build them).
    public var version: UInt16 {
        switch self {
        case .userRegistered(let e): if case .plain = e.account { return 1 }
        case .messageSent(let e): if case .plain = e.body { return 2 }
        default: break
        }
        return type.currentVersion
    }

    /// True for the plaintext shapes that only logs from before encryption hold.
    public var isPlaintextPersonal: Bool {
        switch self {
        case .userRegistered(let e): if case .plain = e.account { return true }
        case .messageSent(let e): if case .plain = e.body { return true }
        default: break
        }
        return false
    }

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
