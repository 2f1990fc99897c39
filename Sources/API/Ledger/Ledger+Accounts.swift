import EventLog
import Foundation
import Projections

/// Accounts and sessions: registration, login, refresh, logout, expiry and erasure. Every
/// decision that ends a session tells the hub at once, so its sockets get nothing more.
extension Ledger {
    /// True if the name was ever registered, by an account deleted since included.
    func isNameTaken(_ username: String) -> Bool {
        views.users.userId(nameKey: keys.nameIndex.nameKey(for: username)) != nil
            || views.users.userId(named: username) != nil
    }

    /// Registers with a fresh data key, durable in the key store before the event is reserved,
    /// so no durable registration is ever without its key.
    func register(username: String, passwordHash: String) async throws -> (UInt32, UInt64) {
        try await awaitTurn()
        if isNameTaken(username) {
            throw APIError(.conflict, "username_taken", "A user with that username already exists.")
        }
        let id = views.users.nextUserId
        let key = try keys.createKey(for: id)
        let box = try SealedBox.seal(AccountFields(username: username, passwordHash: passwordHash).bytes,
                                     field: .account, owner: id, key: key)
        let nameKey = keys.nameIndex.nameKey(for: username)
        let seq = try commit([.userRegistered(UserRegistered(userId: id, account: .sealed(nameKey: nameKey, box: box)))])
        remember(username, for: id)
        return (id, seq)
    }

    /// The id, registered spelling and password hash of an active account.
    func credentials(of username: String) -> (id: UInt32, name: String, hash: String)? {
        guard let id = activeUserId(named: username) else { return nil }
        if let user = views.users.user(id), case let .plain(name, hash) = user.account { return (id, name, hash) }
        guard let fields = account(of: id) else { return nil }
        return (id, fields.username, fields.passwordHash)
    }

    /// The password hash of a live session's user, to check a password asked again.
    func passwordHash(of token: VerifiedToken) -> String? {
        guard isLive(token) else { return nil }
        if let user = views.users.user(token.userId), case let .plain(_, hash) = user.account { return hash }
        return account(of: token.userId)?.passwordHash
    }

    func login(userId: UInt32) async throws -> (session: TokenID, jti: TokenID, seq: UInt64, presence: Fanout?) {
        try await awaitTurn()
        // Erased on another node while the password was being checked.
        guard views.users.isActive(userId) else {
            throw APIError(.unauthorized, "no_active_account", "No active account found with the given credentials")
        }
        let now = nowMicros
        let before = presenceState(userId, now: now)
        let session = TokenID.random()
        let jti = TokenID.random()
        let expiresAt = now + settings.refreshLifetime * 1_000_000
        let seq = try commit([.userLoggedIn(UserLoggedIn(
            userId: userId, sessionId: session, refreshJti: jti, expiresAt: expiresAt))])
        scheduleExpiry(session, at: expiresAt)
        return (session, jti, seq, presenceChange(userId, from: before))
    }

    /// True while the session of a token is open and belongs to its user.
    func isLive(_ token: VerifiedToken) -> Bool {
        views.sessions.isOpen(token.sessionId, of: token.userId, now: nowMicros)
    }

    enum RefreshOutcome {
        case rotated(newJti: TokenID, seq: UInt64)
        case reuseDetected(seq: UInt64, presence: Fanout?)
        case invalid
    }

    func refresh(_ token: VerifiedToken) async throws -> RefreshOutcome {
        try await awaitTurn()
        let now = nowMicros
        guard let session = views.sessions.session(token.sessionId), session.userId == token.userId,
              session.isOpen(now: now) else { return .invalid }
        if token.jti != session.currentJti {
            let before = presenceState(token.userId, now: now)
            let seq = try commit([.sessionRevoked(SessionRevoked(sessionId: token.sessionId, retiredJti: token.jti))])
            hub.endSessions([token.sessionId])
            return .reuseDetected(seq: seq, presence: presenceChange(token.userId, from: before))
        }
        let newJti = TokenID.random()
        let expiresAt = now + settings.refreshLifetime * 1_000_000
        let seq = try commit([.tokenRefreshed(TokenRefreshed(
            sessionId: token.sessionId, retiredJti: token.jti, newJti: newJti, expiresAt: expiresAt))])
        scheduleExpiry(token.sessionId, at: expiresAt)
        return .rotated(newJti: newJti, seq: seq)
    }

    func logout(userId: UInt32, refresh: VerifiedToken) async throws -> (seq: UInt64, presence: Fanout?)? {
        try await awaitTurn()
        let now = nowMicros
        guard refresh.userId == userId, let session = views.sessions.session(refresh.sessionId),
              session.userId == userId, session.isOpen(now: now), session.currentJti == refresh.jti else { return nil }
        let before = presenceState(userId, now: now)
        let seq = try commit([.userLoggedOut(UserLoggedOut(sessionId: refresh.sessionId))])
        hub.endSessions([refresh.sessionId])
        return (seq, presenceChange(userId, from: before))
    }

    /// Deletes the account of `token`'s session: `UserErased` is reserved, every session of the
    /// user ends (their sockets are silenced and closed), the name and key leave memory, and
    /// friends see a deleted user go offline. The caller waits for the event to be durable and
    /// then destroys the key in the key store; a crash in between is finished at the next start
    /// (`ChatService.finishErasures`). Nil if the session is not live.
    func erase(_ token: VerifiedToken) async throws -> (seq: UInt64, presence: Fanout?)? {
        try await awaitTurn()
        guard isLive(token) else { return nil }
        let user = token.userId
        let sessions = views.sessions.unendedSessions.filter { $0.userId == user }.map(\.sessionId)
        let seq = try commit([.userErased(UserErased(userId: user))])
        remember(nil, for: user)
        keys.forget(user)
        hub.endSessions(sessions)
        return (seq, presenceFrame(user, online: false, connected: false))
    }

    // MARK: expiry

    func scheduleExpiry(_ session: TokenID, at expiresAt: Int64) {
        expiries.insert(SessionExpiry(at: expiresAt, session: session))
        expiryScheduled(expiresAt)
    }

    /// Ends the sessions whose refresh token expired by `now`: their sockets are silenced and
    /// closed, and friends of users left with no open session see them go offline. Expiry
    /// needs no event (a session is open only while unexpired, in any replay); this only acts
    /// on it when it happens instead of at the next request. Returns the next expiry, if any.
    func expireDue(now: Int64) -> (presence: [Fanout], next: Int64?) {
        var ended: [TokenID] = []
        var users = Set<UInt32>()
        while let first = expiries.min, first.at <= now {
            _ = expiries.removeMin()
            // A refresh moved it later (another entry holds that), or it ended otherwise.
            guard let s = views.sessions.session(first.session), s.state == .open, s.expiresAt <= now else { continue }
            ended.append(first.session)
            users.insert(s.userId)
        }
        hub.endSessions(ended)
        let presence = users.sorted().compactMap { user -> Fanout? in
            guard !views.isOnline(user, now: now) else { return nil }
            return presenceFrame(user, online: false, connected: views.isConnected(user))
        }
        return (presence, expiries.min?.at)
    }
}
