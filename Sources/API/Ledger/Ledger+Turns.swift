import EventLog
import Foundation
import Projections

/// The write turn of one of several nodes on a shared log. A node decides only while it holds
/// the database's turn lock and has applied every batch stored before it took it, so decisions
/// of all nodes stay in one order (unique names, client ids, chat starts), as with one node.
/// A command that finds the turn closed waits here; `ClusterNode` opens the turn for all the
/// waiting commands at once and closes it once their batch is committed.
struct WriteTurn {
    /// False alone on a log: the turn is then always open.
    var shared = false
    var isOpen = true
    /// Commands waiting for the next turn.
    var waiters: [CheckedContinuation<Void, any Error>] = []
    /// Commands let in by `openTurn` that have not run yet: the turn cannot close before they do.
    var admitted = 0
    var allAdmittedRan: CheckedContinuation<Void, Never>?
    /// Asks the node for a turn (called when the first command starts waiting).
    var wanted: (@Sendable () -> Void)?
    /// Catches this node up with the database (a lookup that misses may have missed a new event).
    var catchUp: (@Sendable () async -> Void)?
    /// This node's epoch (its sockets' ids carry it).
    var epoch: UInt64 = 0
    /// Set once the node stopped taking turns: every command then fails at once.
    var endedWith: (any Error)?
}

extension Ledger {
    /// Makes decisions wait for write turns from now on (before `startEpoch`).
    func shareLog(wanted: @escaping @Sendable () -> Void, catchUp: @escaping @Sendable () async -> Void) {
        turn.shared = true
        turn.isOpen = false
        turn.wanted = wanted
        turn.catchUp = catchUp
    }

    /// Returns inside a write turn; the caller decides before its next suspension.
    func awaitTurn() async throws {
        while turn.shared && !turn.isOpen {
            if let ended = turn.endedWith { throw ended }
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
                turn.waiters.append(waiter)
                if turn.waiters.count == 1 { turn.wanted?() }
            }
            turn.admitted -= 1
            if turn.admitted == 0, let closing = turn.allAdmittedRan {
                turn.allAdmittedRan = nil
                closing.resume()
            }
        }
    }

    var hasTurnWaiters: Bool { !turn.waiters.isEmpty }

    /// This node's epoch on a shared log.
    var ownEpoch: UInt64 { turn.epoch }

    /// Lets every waiting command in; returns how many there were.
    @discardableResult
    func openTurn() -> Int {
        turn.isOpen = true
        let waiting = turn.waiters
        turn.waiters.removeAll()
        turn.admitted += waiting.count
        for waiter in waiting { waiter.resume() }
        return waiting.count
    }

    /// Returns once every command let in by `openTurn` has run its decision.
    func untilAdmittedRan() async {
        guard turn.admitted > 0 else { return }
        await withCheckedContinuation { turn.allAdmittedRan = $0 }
    }

    /// Ends the turn: commands arriving from now on wait for the next one.
    func closeTurn() async {
        await untilAdmittedRan()
        turn.isOpen = !turn.shared
    }

    /// No more turns (the node stopped or starts over): waiting and later commands fail.
    func endTurns(_ error: any Error) {
        turn.endedWith = error
        turn.isOpen = false
        failTurnWaiters(error)
    }

    /// Fails every waiting command (the database cannot be reached: they answer 503).
    func failTurnWaiters(_ error: any Error) {
        let waiting = turn.waiters
        turn.waiters.removeAll()
        for waiter in waiting { waiter.resume(throwing: error) }
    }

    /// True when `token`'s session is live here, or, on a shared log, once this node has
    /// caught up with the database (the session may have begun on another node a moment ago).
    func isLiveCatchingUp(_ token: VerifiedToken) async -> Bool {
        if isLive(token) { return true }
        guard turn.shared, let catchUp = turn.catchUp else { return false }
        await catchUp()
        return isLive(token)
    }

    /// `credentials(of:)`, catching up first when the name is unknown here (see `isLiveCatchingUp`).
    func credentialsCatchingUp(of username: String) async -> (id: UInt32, name: String, hash: String)? {
        if let found = credentials(of: username) { return found }
        guard turn.shared, let catchUp = turn.catchUp else { return nil }
        await catchUp()
        return credentials(of: username)
    }

    // MARK: other nodes' events

    /// Applies events another node stored (this node's log has them now) and acts on them as
    /// their node did: ended sessions' sockets here are silenced, keys of erased users leave
    /// memory, and this node's sockets get the messages and presence frames. Returns the frames,
    /// and whether one of the events ended this node's own epoch (it was taken for dead).
    func applyStored(_ records: [Record]) throws -> (frames: [Fanout], endedOwnEpoch: Bool) {
        var frames: [Fanout] = []
        var endedOwnEpoch = false
        for record in records {
            let event = try Event.decode(record)
            let seq = record.seq, ts = record.timestamp
            let now = nowMicros
            switch event {
            case .userLoggedIn(let e):
                let before = presenceState(e.userId, now: now)
                views.apply(event, seq: seq, timestamp: ts)
                scheduleExpiry(e.sessionId, at: e.expiresAt)
                if let change = presenceChange(e.userId, from: before) { frames.append(change) }
            case .tokenRefreshed(let e):
                views.apply(event, seq: seq, timestamp: ts)
                scheduleExpiry(e.sessionId, at: e.expiresAt)
            case .sessionRevoked(let e):
                endSession(e.sessionId, event: event, seq: seq, timestamp: ts, frames: &frames)
            case .userLoggedOut(let e):
                endSession(e.sessionId, event: event, seq: seq, timestamp: ts, frames: &frames)
            case .userErased(let e):
                let sessions = views.sessions.unendedSessions.filter { $0.userId == e.userId }.map(\.sessionId)
                views.apply(event, seq: seq, timestamp: ts)
                remember(nil, for: e.userId)
                keys.forget(e.userId)
                hub.endSessions(sessions)
                if let frame = presenceFrame(e.userId, online: false, connected: false) { frames.append(frame) }
            case .socketConnected(let e):
                let before = presenceState(e.userId, now: now)
                views.apply(event, seq: seq, timestamp: ts)
                if let change = presenceChange(e.userId, from: before) { frames.append(change) }
            case .socketDisconnected(let e):
                let before = presenceState(e.userId, now: now)
                views.apply(event, seq: seq, timestamp: ts)
                if let change = presenceChange(e.userId, from: before) { frames.append(change) }
            case .nodeLeft(let e):
                frames.append(contentsOf: applyNodeLeft(e.epoch, event: event, seq: seq, timestamp: ts))
                if e.epoch == turn.epoch { endedOwnEpoch = true }
            case .messageSent(let m):
                views.apply(event, seq: seq, timestamp: ts)
                let message = StoredMessage(
                    id: seq, conversation: m.conversation, sender: name(of: m.senderId), receiver: name(of: m.receiverId),
                    text: text(of: m), timestamp: ts, clientId: m.clientId, senderId: m.senderId)
                frames.append(Fanout(users: [m.receiverId, m.senderId], exceptSocket: nil, frame: message.messageWireFrame))
            case .userRegistered, .chatStarted, .serverStarted:
                views.apply(event, seq: seq, timestamp: ts)
            }
        }
        return (frames, endedOwnEpoch)
    }

    private func endSession(_ id: TokenID, event: Event, seq: UInt64, timestamp: Int64, frames: inout [Fanout]) {
        let user = views.sessions.session(id)?.userId
        let before = user.map { presenceState($0, now: nowMicros) }
        views.apply(event, seq: seq, timestamp: timestamp)
        hub.endSessions([id])
        if let user, let before, let change = presenceChange(user, from: before) { frames.append(change) }
    }

    /// Applies `NodeLeft`: the users who had sockets of that epoch may be offline now.
    private func applyNodeLeft(_ epoch: UInt64, event: Event, seq: UInt64, timestamp: Int64) -> [Fanout] {
        let now = nowMicros
        let users = views.presence.userIds(withSocketsOf: epoch)
        let before = users.map { presenceState($0, now: now) }
        views.apply(event, seq: seq, timestamp: timestamp)
        return zip(users, before).compactMap { presenceChange($0, from: $1) }
    }

    /// Records that the node of `epoch` is gone (found without a heartbeat): its sockets count
    /// as closed. Nil when nothing is left to close (another node recorded it first).
    func nodeLeft(_ epoch: UInt64) async throws -> (seq: UInt64, frames: [Fanout])? {
        try await awaitTurn()
        guard epoch != turn.epoch, !views.presence.userIds(withSocketsOf: epoch).isEmpty else { return nil }
        let now = nowMicros
        let users = views.presence.userIds(withSocketsOf: epoch)
        let before = users.map { presenceState($0, now: now) }
        let seq = try commit([.nodeLeft(NodeLeft(epoch: epoch))])
        return (seq, zip(users, before).compactMap { presenceChange($0, from: $1) })
    }
}
