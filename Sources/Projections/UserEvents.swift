/// A new account. `userId` is the next id in registration order (1, 2, 3, ...).
public struct UserRegistered: Sendable, Equatable {
    public var userId: UInt32
    /// As the user typed it; uniqueness is case-insensitive.
    public var username: String
    /// Django format: `pbkdf2_sha256$<iterations>$<salt>$<hash>`.
    public var passwordHash: String

    public init(userId: UInt32, username: String, passwordHash: String) {
        self.userId = userId
        self.username = username
        self.passwordHash = passwordHash
    }
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
