/// One registered user as the users view knows them.
public struct UserInfo: Sendable, Equatable {
    public var id: UInt32
    /// As registered; once erased, a sealed account keeps only its `NameKey` (the box is
    /// dropped: without its key it is noise).
    public var account: UserRegistered.Account
    public var erased: Bool
    public var registeredAt: Int64
    public var lastLogin: Int64?
    /// Last login, token refresh or message sent (registration time before any).
    public var lastActivity: Int64

    /// The name, for accounts from before encryption only; a sealed one needs its key.
    public var plainUsername: String? {
        if case let .plain(username, _) = account, !erased { return username }
        return nil
    }

    /// The sealed name and hash, while the account is not erased.
    public var sealedAccount: [UInt8]? {
        if case let .sealed(_, box) = account, !erased { return box }
        return nil
    }
}

/// Users by id, and by name: by case-insensitive name for plaintext accounts (logs from before
/// encryption), by `NameKey` for sealed ones. Erased users keep their id and their name's key.
public struct UsersView: Projection {
    public static let version = 2

    /// `users[id - 1]`: ids are dense, so an array beats a dictionary. `lastActivity` is kept
    /// apart, in `activity`, not here: every message updates it, and 8 bytes a user stay in
    /// cache where the whole record would not.
    var users: [UserInfo] = []
    /// `activity[id - 1]`: each user's `lastActivity`.
    var activity: [Int64] = []
    /// Plaintext accounts, keyed by `username.lowercased()`.
    var idsByName: [String: UInt32] = [:]
    /// Sealed accounts, erased ones included: a name stays taken forever.
    var idsByKey: [NameKey: UInt32] = [:]

    public init() {}

    public var count: Int { users.count }
    public var nextUserId: UInt32 { UInt32(users.count + 1) }
    public var all: [UserInfo] { users.indices.map { withActivity($0) } }
    /// Erased users, ascending.
    public var erasedIds: [UInt32] { users.filter(\.erased).map(\.id) }

    /// True if any account is in the plaintext (v1) shape: a log from before encryption.
    public var hasPlaintextAccounts: Bool { !idsByName.isEmpty }

    /// The id of a plaintext account named `username` (case-insensitive), erased or not.
    public func userId(named username: String) -> UInt32? {
        idsByName[username.lowercased()]
    }

    /// The user whose name has this key, erased or not (a taken name).
    public func userId(nameKey: NameKey) -> UInt32? { idsByKey[nameKey] }

    public func user(_ id: UInt32) -> UserInfo? {
        guard id >= 1, Int(id) <= users.count else { return nil }
        return withActivity(Int(id) - 1)
    }

    private func withActivity(_ i: Int) -> UserInfo {
        var info = users[i]
        info.lastActivity = activity[i]
        return info
    }

    /// The plaintext name of `id` (logs from before encryption); nil for sealed or erased users.
    public func username(of id: UInt32) -> String? { user(id)?.plainUsername }

    public func exists(_ id: UInt32) -> Bool { id >= 1 && Int(id) <= users.count }

    /// Registered and not erased.
    public func isActive(_ id: UInt32) -> Bool { exists(id) && !users[Int(id) - 1].erased }

    public func isErased(_ id: UInt32) -> Bool { exists(id) && users[Int(id) - 1].erased }

    /// 0 for an unknown user, so unknown ids sort last by recency.
    public func lastActivity(of id: UInt32) -> Int64 { exists(id) ? activity[Int(id) - 1] : 0 }

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
        case .userErased(let e):
            erase(e.userId)
        default:
            // A refresh is activity too, but only the sessions view knows whose
            // session it was; ProjectionSet forwards it via `noteActivity`.
            break
        }
    }

    mutating func register(_ e: UserRegistered, at timestamp: Int64) {
        guard e.userId == nextUserId else { return }
        switch e.account {
        case let .plain(username, _):
            let key = username.lowercased()
            if idsByName[key] == nil { idsByName[key] = e.userId }
        case let .sealed(nameKey, _):
            if idsByKey[nameKey] == nil { idsByKey[nameKey] = e.userId }
        }
        // `lastActivity` lives in `activity`; the copy in `users` is never read.
        users.append(UserInfo(
            id: e.userId, account: e.account, erased: false,
            registeredAt: timestamp, lastLogin: nil, lastActivity: 0))
        activity.append(timestamp)
    }

    mutating func erase(_ id: UInt32) {
        guard isActive(id) else { return }
        let i = Int(id) - 1
        users[i].erased = true
        if case let .sealed(nameKey, _) = users[i].account { users[i].account = .sealed(nameKey: nameKey, box: []) }
    }

    mutating func noteActivity(_ id: UInt32, at timestamp: Int64) {
        let i = Int(id) &- 1
        guard i >= 0, i < activity.count else { return }
        if timestamp > activity[i] { activity[i] = timestamp }
    }
}
