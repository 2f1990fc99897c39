import EventLog
import Foundation
import HeapModule
import NIOCore
import Projections

/// The one decider: checks each command against the views, turns it into events, applies
/// them and hands them to the log, all in one order, so a replay reaches the same decisions.
/// Callers wait for `log.waitUntilDurable(seq)` before they answer.
///
/// Personal fields are sealed here, under the owner's data key from `keys`, before they reach
/// an event; names are opened on first use and kept in memory (never in the views).
public actor Ledger {
    public nonisolated let log: EventLog
    public nonisolated let keys: KeyStore
    public internal(set) var views: ProjectionSet
    let settings: LedgerSettings
    /// Open sockets; sessions that end are told to it from inside the actor, so no frame
    /// decided later reaches their sockets.
    nonisolated let hub: Hub
    var nextSocketId: UInt64 = 1
    /// Decrypted usernames by `id - 1`, filled on first use: a start never opens every name.
    var nameCache: [String?] = []
    /// Unended sessions by expiry (stale entries, left by a refresh or an end, are skipped).
    var expiries = Heap<SessionExpiry>()
    /// Told of each new expiry, so the timer can wake for it.
    let expiryScheduled: @Sendable (Int64) -> Void
    /// On a log shared by several nodes: when this node may decide (see `Ledger+Turns`).
    var turn = WriteTurn()

    /// How a deleted user reads to everyone else.
    static let deletedName = "[deleted]"

    public init(log: EventLog, views: ProjectionSet, settings: LedgerSettings, keys: KeyStore, hub: Hub,
                expiryScheduled: @escaping @Sendable (Int64) -> Void = { _ in }) {
        self.log = log
        self.views = views
        self.settings = settings
        self.keys = keys
        self.hub = hub
        self.expiryScheduled = expiryScheduled
        self.nextSocketId = (views.presence.epoch << 32) | 1
        // Sessions that expired while the server was down need nothing at start: no socket of
        // theirs survived it, and friends hear of presence only from sockets open now.
        let now = currentMicros()
        expiries = Heap(views.sessions.unendedSessions.lazy.filter { $0.expiresAt > now }
            .map { SessionExpiry(at: $0.expiresAt, session: $0.sessionId) })
    }

    var nowMicros: Int64 { currentMicros() }

    /// Reserves, applies and returns the last seq of `events`. On a shared log only inside
    /// this node's write turn: every decision must see every event stored before it.
    @discardableResult
    func commit(_ events: [Event]) throws -> UInt64 {
        if turn.shared && !turn.isOpen { throw EventLogError.io("a decision outside the write turn (a bug): refused") }
        let ts = max(nowMicros, views.lastTimestamp)
        let seqs = try log.reserve(events.map { $0.record(timestamp: ts) })
        for (i, event) in events.enumerated() {
            views.apply(event, seq: seqs.lowerBound + UInt64(i), timestamp: ts)
        }
        return seqs.upperBound
    }

    /// Appends `ServerStarted`, which closes the sockets of earlier epochs, or on a shared log
    /// joins the nodes serving it under a new epoch of its own, ending `previous` epochs (this
    /// node's earlier runs, dead since it is starting again).
    public func startEpoch(ending previous: [UInt64] = []) async throws -> UInt64 {
        try await awaitTurn()
        let epoch = views.presence.epoch + 1
        nextSocketId = (epoch << 32) | 1
        turn.epoch = epoch
        if let first = expiries.min { expiryScheduled(first.at) }
        let ended = previous.filter { !views.presence.userIds(withSocketsOf: $0).isEmpty }.map { Event.nodeLeft(NodeLeft(epoch: $0)) }
        return try commit(ended + [.serverStarted(ServerStarted(epoch: epoch, shared: turn.shared))])
    }

    /// Registered users (erased ones included), read inside the actor: while a copy of `views`
    /// taken out of it is alive, the Ledger's next change to a view copies that view whole.
    func userCount() -> Int { views.users.count }

    // MARK: names

    /// The name others see: the registered spelling, or `[deleted]` once erased.
    func name(of id: UInt32) -> String {
        // The cache first: every message names two users, and copying a user's record is not free.
        let slot = Int(id) &- 1
        if slot >= 0, slot < nameCache.count, let cached = nameCache[slot], views.users.isActive(id) { return cached }
        guard let user = views.users.user(id) else { return "" }
        if user.erased { return Self.deletedName }
        if let plain = user.plainUsername { return plain }
        // Every durable registration has a key (start-up checks), so this only fails on a
        // damaged key store; the user then reads as deleted rather than failing every read.
        guard let fields = account(of: id) else { return Self.deletedName }
        remember(fields.username, for: id)
        return fields.username
    }

    /// The opened name and password hash of an active user.
    func account(of id: UInt32) -> AccountFields? {
        guard let box = views.users.user(id)?.sealedAccount, let key = keys.key(for: id),
              let plain = try? SealedBox.open(box, field: .account, owner: id, key: key) else { return nil }
        return try? AccountFields(bytes: plain)
    }

    func remember(_ name: String?, for id: UInt32) {
        let slot = Int(id) - 1
        if slot >= nameCache.count { nameCache.append(contentsOf: repeatElement(nil, count: slot + 1 - nameCache.count)) }
        nameCache[slot] = name
    }

    /// The active user called `username` (case-insensitive); nil for unknown or deleted.
    func activeUserId(named username: String) -> UInt32? {
        activeUserId(nameKey: keys.nameIndex.nameKey(for: username), name: username)
    }

    /// As `activeUserId(named:)`, with the name's key computed by the caller (off the actor).
    func activeUserId(nameKey: NameKey, name username: String) -> UInt32? {
        let id = views.users.userId(nameKey: nameKey) ?? views.users.userId(named: username)
        guard let id, views.users.isActive(id) else { return nil }
        return id
    }

    // MARK: sockets and presence

    /// A new socket's outbox, in the hub from now on but holding its frames until the upgrade
    /// is done (`SocketOutbox.release`): opened inside the actor before the upgrade is answered,
    /// so a session end or a message decided or applied after that always finds it.
    func preopenSocket(_ token: VerifiedToken, channel: any Channel) -> SocketOutbox {
        let outbox = SocketOutbox(user: token.userId, session: token.sessionId, id: nextSocketId, channel: channel, held: true)
        nextSocketId += 1
        hub.open(outbox)
        return outbox
    }

    /// Records the opening of a socket of a live session. Nil if the session has ended (the
    /// caller closes the socket).
    func socketOpened(_ token: VerifiedToken, outbox: SocketOutbox) async throws -> (seq: UInt64, presence: Fanout?)? {
        try await awaitTurn()
        guard isLive(token) else { return nil }
        let userId = token.userId
        let before = presenceState(userId, now: nowMicros)
        let seq = try commit([.socketConnected(SocketConnected(userId: userId, socketId: outbox.id))])
        return (seq, presenceChange(userId, from: before))
    }

    func socketClosed(userId: UInt32, socketId: UInt64) async throws -> (seq: UInt64, presence: Fanout?) {
        try await awaitTurn()
        let before = presenceState(userId, now: nowMicros)
        let seq = try commit([.socketDisconnected(SocketDisconnected(userId: userId, socketId: socketId))])
        return (seq, presenceChange(userId, from: before))
    }

    func presenceState(_ userId: UInt32, now: Int64) -> (online: Bool, connected: Bool) {
        (views.isOnline(userId, now: now), views.isConnected(userId))
    }

    /// The presence frame for the user's friends, when online or connected changed.
    func presenceChange(_ userId: UInt32, from before: (online: Bool, connected: Bool)) -> Fanout? {
        let after = presenceState(userId, now: nowMicros)
        guard after != before, views.users.exists(userId) else { return nil }
        return presenceFrame(userId, online: after.online, connected: after.connected)
    }

    func presenceFrame(_ userId: UInt32, online: Bool, connected: Bool) -> Fanout? {
        let friends = Array(views.friendship.friends(of: userId))
        guard !friends.isEmpty else { return nil }
        let frame = "{\"type\":\"presence\",\"user\":\(jsonQuoted(name(of: userId))),\"online\":\(online),\"connected\":\(connected)}"
        return Fanout(users: friends, exceptSocket: nil, frame: WireFrame(frame))
    }
}

/// Tunables the Ledger decides with.
public struct LedgerSettings: Sendable {
    /// Refresh-token (session) lifetime, seconds.
    public var refreshLifetime: Int64

    public init(refreshLifetime: Int64) { self.refreshLifetime = refreshLifetime }
}

/// When a session's refresh token expires (µs), for the expiry timer.
struct SessionExpiry: Comparable {
    var at: Int64
    var session: TokenID

    static func < (a: SessionExpiry, b: SessionExpiry) -> Bool { (a.at, a.session) < (b.at, b.session) }
}

/// A frame for every open socket of `users` (but one).
struct Fanout: Sendable {
    var users: [UInt32]
    var exceptSocket: UInt64?
    var frame: WireFrame
}
