/// One registered user as the users view knows them.
public struct UserInfo: Sendable, Equatable {
    public var id: UInt32
    public var username: String
    public var passwordHash: String
    public var registeredAt: Int64
    public var lastLogin: Int64?
    /// Last login, token refresh or message sent (registration time before any).
    public var lastActivity: Int64
}

/// Users by id and by case-insensitive username.
public struct UsersView: Projection {
    public static let version = 1

    /// `users[id - 1]`: ids are dense, so an array beats a dictionary.
    var users: [UserInfo] = []
    /// Keyed by `username.lowercased()`.
    var idsByName: [String: UInt32] = [:]

    public init() {}

    public var count: Int { users.count }
    public var nextUserId: UInt32 { UInt32(users.count + 1) }
    public var all: [UserInfo] { users }

    public func userId(named username: String) -> UInt32? {
        idsByName[username.lowercased()]
    }

    public func user(_ id: UInt32) -> UserInfo? {
        guard id >= 1, Int(id) <= users.count else { return nil }
        return users[Int(id) - 1]
    }

    public func username(of id: UInt32) -> String? { user(id)?.username }

    public func exists(_ id: UInt32) -> Bool { id >= 1 && Int(id) <= users.count }

    /// 0 for an unknown user, so unknown ids sort last by recency.
    public func lastActivity(of id: UInt32) -> Int64 { user(id)?.lastActivity ?? 0 }

    public mutating func apply(_ event: Event, seq: UInt64, timestamp: Int64) {
        switch event {
        case .userRegistered(let e):
            register(e, at: timestamp)
        case .userLoggedIn(let e):
            guard exists(e.userId) else { return }
            users[Int(e.userId) - 1].lastLogin = timestamp
            noteActivity(e.userId, at: timestamp)
        case .messageSent(let e):
            noteActivity(e.senderId, at: timestamp)
        default:
            // A refresh is activity too, but only the sessions view knows whose
            // session it was; ProjectionSet forwards it via `noteActivity`.
            break
        }
    }

    mutating func register(_ e: UserRegistered, at timestamp: Int64) {
        guard e.userId == nextUserId else { return }
        users.append(UserInfo(
            id: e.userId, username: e.username, passwordHash: e.passwordHash,
            registeredAt: timestamp, lastLogin: nil, lastActivity: timestamp))
        let key = e.username.lowercased()
        if idsByName[key] == nil { idsByName[key] = e.userId }
    }

    mutating func noteActivity(_ id: UInt32, at timestamp: Int64) {
        guard exists(id) else { return }
        let i = Int(id) - 1
        if timestamp > users[i].lastActivity { users[i].lastActivity = timestamp }
    }
}
