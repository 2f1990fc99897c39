/// Where a session stands. Expiry is not a state: it depends on the time a question is asked.
public enum SessionState: UInt8, Sendable {
    case open = 0
    case loggedOut = 1
    case revoked = 2
    /// Ended because the account was deleted.
    case accountDeleted = 3
}

/// One login session and its refresh-token chain.
public struct SessionInfo: Sendable, Equatable {
    public var sessionId: TokenID
    public var userId: UInt32
    /// The only refresh jti that may be used next.
    public var currentJti: TokenID
    /// Every jti rotated out, in rotation order; presenting one again is reuse and revokes
    /// the session (detected as "not the current jti"; these are kept for audits). An array:
    /// a start decodes tens of thousands of sessions, and a set per session cost hashing and
    /// an allocation each.
    public var retiredJtis: [TokenID]
    /// Refresh expiry (µs), sliding with each rotation.
    public var expiresAt: Int64
    public var state: SessionState
    public var createdAt: Int64
    /// When it was logged out or revoked.
    public var endedAt: Int64?

    /// Open and not yet expired at `now`.
    public func isOpen(now: Int64) -> Bool {
        state == .open && expiresAt > now
    }
}

/// Sessions by id, and the not-ended sessions of each user (the basis of "online").
public struct SessionsView: Projection {
    public static let version = 3

    var sessions: [TokenID: SessionInfo] = [:]
    /// Sessions not logged out or revoked, per user; they may still have expired.
    /// A user with none has no entry.
    var openByUser: [UInt32: Set<TokenID>] = [:]

    public init() {}

    public var count: Int { sessions.count }

    public func session(_ sessionId: TokenID) -> SessionInfo? { sessions[sessionId] }

    public func isOpen(_ sessionId: TokenID, now: Int64) -> Bool {
        sessions[sessionId]?.isOpen(now: now) ?? false
    }

    /// True while `sessionId` is open, unexpired at `now` and `userId`'s. Reads the entry in
    /// place (no copy of its set of retired jtis): the Ledger asks this for every send.
    public func isOpen(_ sessionId: TokenID, of userId: UInt32, now: Int64) -> Bool {
        guard let i = sessions.index(forKey: sessionId) else { return false }
        let s = sessions.values[i]
        return s.userId == userId && s.state == .open && s.expiresAt > now
    }

    /// Sessions of `userId` that are open and unexpired at `now`.
    public func openSessionIds(of userId: UInt32, now: Int64) -> [TokenID] {
        guard let ids = openByUser[userId] else { return [] }
        return ids.filter { sessions[$0]?.isOpen(now: now) ?? false }.sorted()
    }

    public func openSessionCount(_ userId: UInt32, now: Int64) -> Int {
        guard let ids = openByUser[userId] else { return 0 }
        var n = 0
        for id in ids where sessions[id]?.isOpen(now: now) ?? false { n += 1 }
        return n
    }

    /// Every session `userId` ever had, oldest first (for their data export; scans all sessions).
    public func allSessions(of userId: UInt32) -> [SessionInfo] {
        sessions.values.filter { $0.userId == userId }.sorted { ($0.createdAt, $0.sessionId) < ($1.createdAt, $1.sessionId) }
    }

    /// Sessions not logged out, revoked or deleted, expired or not, with their expiry.
    public var unendedSessions: [(sessionId: TokenID, userId: UInt32, expiresAt: Int64)] {
        openByUser.values.flatMap { ids in
            ids.compactMap { id in sessions[id].map { (id, $0.userId, $0.expiresAt) } }
        }
    }

    /// Online = at least one open, unexpired session.
    public func isOnline(_ userId: UInt32, now: Int64) -> Bool {
        guard let ids = openByUser[userId] else { return false }
        return ids.contains { sessions[$0]?.isOpen(now: now) ?? false }
    }

    /// Online users in ascending id order.
    public func onlineUserIds(now: Int64) -> [UInt32] {
        var result: [UInt32] = []
        for (user, ids) in openByUser where ids.contains(where: { sessions[$0]?.isOpen(now: now) ?? false }) {
            result.append(user)
        }
        return result.sorted()
    }

    public mutating func apply(_ event: Event, seq: UInt64, timestamp: Int64) {
        switch event {
        case .userLoggedIn(let e):
            guard sessions[e.sessionId] == nil else { return }
            sessions[e.sessionId] = SessionInfo(
                sessionId: e.sessionId, userId: e.userId, currentJti: e.refreshJti, retiredJtis: [],
                expiresAt: e.expiresAt, state: .open, createdAt: timestamp, endedAt: nil)
            openByUser[e.userId, default: []].insert(e.sessionId)
        case .tokenRefreshed(let e):
            guard sessions[e.sessionId] != nil else { return }
            sessions[e.sessionId]?.retiredJtis.append(e.retiredJti)
            sessions[e.sessionId]?.currentJti = e.newJti
            sessions[e.sessionId]?.expiresAt = e.expiresAt
        case .sessionRevoked(let e):
            end(e.sessionId, as: .revoked, at: timestamp)
        case .userLoggedOut(let e):
            end(e.sessionId, as: .loggedOut, at: timestamp)
        case .userErased(let e):
            for id in openByUser[e.userId] ?? [] { end(id, as: .accountDeleted, at: timestamp) }
        default:
            break
        }
    }

    private mutating func end(_ sessionId: TokenID, as state: SessionState, at timestamp: Int64) {
        guard let info = sessions[sessionId], info.state == .open else { return }
        sessions[sessionId]?.state = state
        sessions[sessionId]?.endedAt = timestamp
        openByUser[info.userId]?.remove(sessionId)
        if openByUser[info.userId]?.isEmpty == true { openByUser[info.userId] = nil }
    }
}
