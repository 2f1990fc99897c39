/// A new account. `userId` is the next id in registration order (1, 2, 3, ...).
///
/// Schema history: v1 kept the name and password hash in clear; v2 (current) keeps a keyed
/// hash of the case-folded name and seals the name and hash under the user's data key.
public struct UserRegistered: Sendable, Equatable {
    public var userId: UInt32
    public var account: Account

    /// What a registration says about the person behind it.
    public enum Account: Sendable, Equatable {
        /// v1, written before personal fields were encrypted. The username as typed (uniqueness
        /// is case-insensitive) and Django's `pbkdf2_sha256$<iterations>$<salt>$<hash>`.
        case plain(username: String, passwordHash: String)
        /// v2: `box` seals `AccountFields` under the user's key (`PersonalField.account`).
        case sealed(nameKey: NameKey, box: [UInt8])
    }

    public init(userId: UInt32, account: Account) {
        self.userId = userId
        self.account = account
    }

    /// A v1 (plaintext) registration, as logs before encryption hold them.
    public init(userId: UInt32, username: String, passwordHash: String) {
        self.init(userId: userId, account: .plain(username: username, passwordHash: passwordHash))
    }
}

/// The personal fields a registration seals: varint-prefixed username then password hash.
public struct AccountFields: Sendable, Equatable {
    public var username: String
    public var passwordHash: String

    public init(username: String, passwordHash: String) {
        self.username = username
        self.passwordHash = passwordHash
    }

    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: username.utf8.count + passwordHash.utf8.count + 4)
        w.string(username)
        w.string(passwordHash)
        return w.bytes
    }

    public init(bytes: [UInt8]) throws {
        (username, passwordHash) = try bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            let fields = (try r.string(), try r.string())
            try r.finish()
            return fields
        }
    }
}

/// An account was deleted: every session ends, the name stays taken (by its `NameKey`), and
/// the user's data key is destroyed, which erases their name, password hash and message texts
/// from the log without rewriting it. Holds nothing personal.
public struct UserErased: Sendable, Equatable {
    public var userId: UInt32

    public init(userId: UInt32) { self.userId = userId }
}

/// A successful login: opens a session with its first refresh token.
public struct UserLoggedIn: Sendable, Equatable {
    public var userId: UInt32
    public var sessionId: TokenID
    public var refreshJti: TokenID
    /// When the refresh token expires (µs); the session counts as online until then.
    public var expiresAt: Int64

    public init(userId: UInt32, sessionId: TokenID, refreshJti: TokenID, expiresAt: Int64) {
        self.userId = userId
        self.sessionId = sessionId
        self.refreshJti = refreshJti
        self.expiresAt = expiresAt
    }
}

/// A refresh-token rotation: the old jti is retired, the new one becomes current,
/// and the session's expiry slides forward.
public struct TokenRefreshed: Sendable, Equatable {
    public var sessionId: TokenID
    public var retiredJti: TokenID
    public var newJti: TokenID
    public var expiresAt: Int64

    public init(sessionId: TokenID, retiredJti: TokenID, newJti: TokenID, expiresAt: Int64) {
        self.sessionId = sessionId
        self.retiredJti = retiredJti
        self.newJti = newJti
        self.expiresAt = expiresAt
    }
}

/// A retired refresh token was presented again: the whole session ends (reuse detection).
public struct SessionRevoked: Sendable, Equatable {
    public var sessionId: TokenID
    /// The retired jti that was reused.
    public var retiredJti: TokenID

    public init(sessionId: TokenID, retiredJti: TokenID) {
        self.sessionId = sessionId
        self.retiredJti = retiredJti
    }
}

/// An explicit logout: the session ends.
public struct UserLoggedOut: Sendable, Equatable {
    public var sessionId: TokenID

    public init(sessionId: TokenID) {
        self.sessionId = sessionId
    }
}
