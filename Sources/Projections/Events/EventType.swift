/// The stable numbering of event types in the log. Never renumber or reuse a raw value:
/// records written years ago are read through this table.
public enum EventType: UInt16, CaseIterable, Sendable {
    case userRegistered = 1
    case userLoggedIn = 2
    case tokenRefreshed = 3
    case sessionRevoked = 4
    case userLoggedOut = 5
    case socketConnected = 6
    case socketDisconnected = 7
    case serverStarted = 8
    case chatStarted = 9
    case messageSent = 10
    case userErased = 11
    case nodeLeft = 12

    /// The name used in audits and filters, e.g. `MessageSent`.
    public var name: String {
        switch self {
        case .userRegistered: "UserRegistered"
        case .userLoggedIn: "UserLoggedIn"
        case .tokenRefreshed: "TokenRefreshed"
        case .sessionRevoked: "SessionRevoked"
        case .userLoggedOut: "UserLoggedOut"
        case .socketConnected: "SocketConnected"
        case .socketDisconnected: "SocketDisconnected"
        case .serverStarted: "ServerStarted"
        case .chatStarted: "ChatStarted"
        case .messageSent: "MessageSent"
        case .userErased: "UserErased"
        case .nodeLeft: "NodeLeft"
        }
    }

    /// The newest schema version (what the server writes; the audit fixtures may still build
    /// older, plaintext shapes, which `Event.version` reports).
    public var currentVersion: UInt16 {
        switch self {
        case .userRegistered: 2  // v2 sealed the name and hash
        case .messageSent: 3  // v2 added client_id, v3 sealed the text
        case .serverStarted: 2  // v2 added `shared`
        default: 1
        }
    }

    /// Every version the decoder still reads.
    public var readableVersions: ClosedRange<UInt16> { 1...currentVersion }

    /// Case-insensitive lookup by name (`MessageSent`, `messagesent`).
    public init?(name: String) {
        let lowered = name.lowercased()
        guard let match = EventType.allCases.first(where: { $0.name.lowercased() == lowered }) else { return nil }
        self = match
    }
}
