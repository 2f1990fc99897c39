import EventLog
import Foundation
import Projections

/// The one decider: checks each command against the views, turns it into events, applies
/// them and hands them to the log, all in one order, so a replay reaches the same decisions.
/// Callers wait for `log.waitUntilDurable(seq)` before they answer.
public actor Ledger {
    public nonisolated let log: EventLog
    public private(set) var views: ProjectionSet
    let settings: LedgerSettings
    private var nextSocketId: UInt64 = 1

    public init(log: EventLog, views: ProjectionSet, settings: LedgerSettings) {
        self.log = log
        self.views = views
        self.settings = settings
        self.nextSocketId = (views.presence.epoch << 32) | 1
    }

    var nowMicros: Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }

    /// Reserves, applies and returns the last seq of `events`.
    @discardableResult
    func commit(_ events: [Event]) throws -> UInt64 {
        let ts = max(nowMicros, views.lastTimestamp)
        let seqs = try log.reserve(events.map { $0.record(timestamp: ts) })
        for (i, event) in events.enumerated() {
            views.apply(event, seq: seqs.lowerBound + UInt64(i), timestamp: ts)
        }
        return seqs.upperBound
    }

    /// Appends `ServerStarted`, which closes the sockets of earlier epochs.
    public func startEpoch() throws -> UInt64 {
        let epoch = views.presence.epoch + 1
        nextSocketId = (epoch << 32) | 1
        return try commit([.serverStarted(ServerStarted(epoch: epoch))])
    }

    // MARK: accounts and sessions

    func register(username: String, passwordHash: String) throws -> (UInt32, UInt64) {
        if views.users.userId(named: username) != nil {
            throw APIError(.conflict, "username_taken", "A user with that username already exists.")
        }
        let id = views.users.nextUserId
        let seq = try commit([.userRegistered(UserRegistered(userId: id, username: username, passwordHash: passwordHash))])
        return (id, seq)
    }

    func credentials(of username: String) -> (id: UInt32, name: String, hash: String)? {
        guard let id = views.users.userId(named: username), let user = views.users.user(id) else { return nil }
        return (id, user.username, user.passwordHash)
    }

    func login(userId: UInt32) throws -> (session: TokenID, jti: TokenID, seq: UInt64, presence: Fanout?) {
        let now = nowMicros
        let before = presenceState(userId, now: now)
        let session = TokenID.random()
        let jti = TokenID.random()
        let seq = try commit([.userLoggedIn(UserLoggedIn(
            userId: userId, sessionId: session, refreshJti: jti,
            expiresAt: now + settings.refreshLifetime * 1_000_000))])
        return (session, jti, seq, presenceChange(userId, from: before))
    }

    /// True while the session of an access token is open and belongs to its user.
    func isLive(_ token: VerifiedToken) -> Bool {
        guard let session = views.sessions.session(token.sessionId) else { return false }
        return session.userId == token.userId && session.isOpen(now: nowMicros)
    }

    enum RefreshOutcome {
        case rotated(newJti: TokenID, seq: UInt64)
        case reuseDetected(seq: UInt64, presence: Fanout?)
        case invalid
    }

    func refresh(_ token: VerifiedToken) throws -> RefreshOutcome {
        let now = nowMicros
        guard let session = views.sessions.session(token.sessionId), session.userId == token.userId,
              session.isOpen(now: now) else { return .invalid }
        if token.jti != session.currentJti {
            let before = presenceState(token.userId, now: now)
            let seq = try commit([.sessionRevoked(SessionRevoked(sessionId: token.sessionId, retiredJti: token.jti))])
            return .reuseDetected(seq: seq, presence: presenceChange(token.userId, from: before))
        }
        let newJti = TokenID.random()
        let seq = try commit([.tokenRefreshed(TokenRefreshed(
            sessionId: token.sessionId, retiredJti: token.jti, newJti: newJti,
            expiresAt: now + settings.refreshLifetime * 1_000_000))])
        return .rotated(newJti: newJti, seq: seq)
    }

    func logout(userId: UInt32, refresh: VerifiedToken) throws -> (seq: UInt64, presence: Fanout?)? {
        let now = nowMicros
        guard refresh.userId == userId, let session = views.sessions.session(refresh.sessionId),
              session.userId == userId, session.isOpen(now: now), session.currentJti == refresh.jti else { return nil }
        let before = presenceState(userId, now: now)
        let seq = try commit([.userLoggedOut(UserLoggedOut(sessionId: refresh.sessionId))])
        return (seq, presenceChange(userId, from: before))
    }

    // MARK: sockets and presence

    func socketOpened(userId: UInt32) throws -> (socketId: UInt64, seq: UInt64, presence: Fanout?) {
        let before = presenceState(userId, now: nowMicros)
        let socketId = nextSocketId
        nextSocketId += 1
        let seq = try commit([.socketConnected(SocketConnected(userId: userId, socketId: socketId))])
        return (socketId, seq, presenceChange(userId, from: before))
    }

    func socketClosed(userId: UInt32, socketId: UInt64) throws -> (seq: UInt64, presence: Fanout?) {
        let before = presenceState(userId, now: nowMicros)
        let seq = try commit([.socketDisconnected(SocketDisconnected(userId: userId, socketId: socketId))])
        return (seq, presenceChange(userId, from: before))
    }

    private func presenceState(_ userId: UInt32, now: Int64) -> (online: Bool, connected: Bool) {
        (views.isOnline(userId, now: now), views.isConnected(userId))
    }

    /// The presence frame for the user's friends, when online or connected changed.
    private func presenceChange(_ userId: UInt32, from before: (online: Bool, connected: Bool)) -> Fanout? {
        let after = presenceState(userId, now: nowMicros)
        guard after != before, let name = views.users.username(of: userId) else { return nil }
        let friends = Array(views.friendship.friends(of: userId))
        guard !friends.isEmpty else { return nil }
        let frame = "{\"type\":\"presence\",\"user\":\(jsonQuoted(name)),\"online\":\(after.online),\"connected\":\(after.connected)}"
        return Fanout(users: friends, exceptSocket: nil, frame: WireFrame(frame))
    }

    // MARK: conversations and messages

    enum Receiver: Sendable {
        case name(String)
        case id(UInt32)
        /// A digit string: a username first, else a user id.
        case nameOrId(String, UInt32?)
    }

    func resolve(_ receiver: Receiver) -> UInt32? {
        switch receiver {
        case let .name(name): return views.users.userId(named: name)
        case let .id(id): return views.users.exists(id) ? id : nil
        case let .nameOrId(name, id):
            if let byName = views.users.userId(named: name) { return byName }
            if let id, views.users.exists(id) { return id }
            return nil
        }
    }

    func startChat(from userId: UInt32, with receiver: Receiver) throws -> (conversation: UInt32, created: Bool, seq: UInt64?, participants: [(UInt32, String)]) {
        guard let other = resolve(receiver) else { throw APIError(.notFound, "user_not_found", "Receiver not found.") }
        guard other != userId else { throw APIError.invalid("receiver_id", "You cannot start a chat with yourself.") }
        let names = [(userId, views.users.username(of: userId) ?? ""), (other, views.users.username(of: other) ?? "")]
        if let existing = views.conversations.conversation(between: userId, other) {
            return (existing, false, nil, names)
        }
        let number = views.conversations.nextConversationNumber
        let seq = try commit([.chatStarted(ChatStarted(conversation: number, userA: userId, userB: other))])
        return (number, true, seq, names)
    }

    /// A message send: a rejection (error code), a repeat of a stored client id, or a new message.
    enum SendOutcome: Sendable {
        case rejected(code: String, detail: String)
        case duplicate(StoredMessage)
        case stored(StoredMessage)
    }

    /// `onStored` runs inside the Ledger right after a new message is decided, with the users
    /// whose sockets get it, so callers register its deliveries in seq order (no later
    /// message's frames can overtake it).
    func send(from sender: UInt32, to receiverName: String, text: String, clientId: String?,
              onStored: (@Sendable (StoredMessage, [UInt32]) -> Void)? = nil) async throws -> SendOutcome {
        guard let receiver = views.users.userId(named: receiverName) else {
            return .rejected(code: "unknown_receiver", detail: "No user named \(receiverName).")
        }
        guard receiver != sender else { return .rejected(code: "invalid_frame", detail: "You cannot send a message to yourself.") }
        guard let conversation = views.conversations.conversation(between: sender, receiver) else {
            return .rejected(code: "chat_not_started", detail: "Start a chat with /api/chat/start/ first.")
        }
        if let clientId, let stored = try await storedMessage(sender: sender, clientId: clientId) {
            return .duplicate(stored)
        }
        let seq = try commit([.messageSent(MessageSent(
            conversation: conversation, senderId: sender, receiverId: receiver, text: text, clientId: clientId))])
        let stored = StoredMessage(
            id: seq, conversation: conversation, sender: views.users.username(of: sender) ?? "",
            receiver: views.users.username(of: receiver) ?? receiverName,
            text: text, timestamp: views.lastTimestamp, clientId: clientId)
        onStored?(stored, [receiver, sender])
        return .stored(stored)
    }

    /// One send of a batch: `onStored` as in `send(from:to:text:clientId:onStored:)`.
    struct SendRequest: Sendable {
        let receiver: String
        let text: String
        let clientId: String?
        let onStored: @Sendable (StoredMessage, [UInt32]) -> Void
    }

    /// A socket's sends decided in order in one actor turn (one hop for the whole batch).
    func send(_ batch: [SendRequest], from sender: UInt32) async -> [Result<SendOutcome, any Error>] {
        var outcomes: [Result<SendOutcome, any Error>] = []
        outcomes.reserveCapacity(batch.count)
        for request in batch {
            do {
                outcomes.append(.success(try await send(
                    from: sender, to: request.receiver, text: request.text, clientId: request.clientId,
                    onStored: request.onStored)))
            } catch {
                outcomes.append(.failure(error))
            }
        }
        return outcomes
    }

    /// The message `sender` already stored under `clientId`, if any. The view's index knows a
    /// message from the moment it is decided; a candidate not yet durable is waited for before
    /// it is read back and compared, so a retry racing its original is matched, never stored twice.
    /// Waiting suspends the actor, and a twin of this send may be stored meanwhile: so after a
    /// wait the candidates are looked up again, and only a pass that did not wait says "new".
    private func storedMessage(sender: UInt32, clientId: String) async throws -> StoredMessage? {
        var ruledOut = Set<UInt64>()
        while true {
            var waited = false
            for seq in views.conversations.messageSeqCandidates(sender: sender, clientId: clientId)
            where !ruledOut.contains(seq) {
                if seq > log.durableSeq {
                    try await log.waitUntilDurable(seq)
                    waited = true
                }
                let m = try message(at: seq)
                if m.clientId == clientId, m.senderId == sender { return m }
                ruledOut.insert(seq)
            }
            if !waited { return nil }
        }
    }

    /// A stored message read back from the log.
    func message(at seq: UInt64) throws -> StoredMessage {
        let record = try log.read(seq: seq)
        guard case let .messageSent(m) = try Event.decode(record) else { throw EventLogError.notFound(seq) }
        return StoredMessage(id: seq, conversation: m.conversation,
                             sender: views.users.username(of: m.senderId) ?? "",
                             receiver: views.users.username(of: m.receiverId) ?? "",
                             text: m.text, timestamp: record.timestamp, clientId: m.clientId, senderId: m.senderId)
    }

    // MARK: reads

    func onlineUsers(limit: Int, offset: Int) -> (count: Int, entries: [String]) {
        let now = nowMicros
        let ids = views.onlineUsers(now: now)
        let page = offset >= ids.count ? [] : Array(ids[offset..<min(ids.count, offset + limit)])
        let entries = page.compactMap { id -> String? in
            guard let user = views.users.user(id) else { return nil }
            let lastLogin = user.lastLogin.map { jsonQuoted(formatTimestamp($0)) } ?? "null"
            return "{\"id\":\(id),\"username\":\(jsonQuoted(user.username)),\"last_login\":\(lastLogin),\"connected\":\(views.isConnected(id))}"
        }
        return (ids.count, entries)
    }

    func userExists(_ id: UInt32) -> Bool { views.users.exists(id) }

    func suggestions(for userId: UInt32, limit: Int) -> [String] {
        views.suggestions(for: userId, limit: limit).compactMap { s in
            guard let name = views.users.username(of: s.userId) else { return nil }
            return "{\"id\":\(s.userId),\"username\":\(jsonQuoted(name)),\"mutual_friends\":\(s.mutualFriends),\"score\":\(s.score)}"
        }
    }

    enum HistoryOutcome {
        case notFound
        case forbidden
        case page([StoredMessage], more: Bool)
    }

    func history(of conversation: UInt32, for userId: UInt32, after: UInt64, limit: Int) async throws -> HistoryOutcome {
        guard let info = views.conversations.conversation(conversation) else { return .notFound }
        guard info.involves(userId) else { return .forbidden }
        let seqs = views.conversations.messages(in: conversation, after: after, limit: limit + 1)
        let page = Array(seqs.prefix(limit))
        try await untilDurable(page.last)
        return .page(try page.map { try message(at: $0) }, more: seqs.count > limit)
    }

    func conversations(of userId: UInt32) async throws -> [String] {
        let infos = views.conversations.conversationsByRecency(of: userId).compactMap { views.conversations.conversation($0) }
        try await untilDurable(infos.compactMap(\.lastMessageSeq).max())
        return try infos.map { info in
            let last = try info.lastMessageSeq.map { try message(at: $0).json } ?? "null"
            return "{\"conversation_id\":\(jsonQuoted(info.id)),\"participants\":\(participantsJSON(info.userA, info.userB)),\"last_message\":\(last),\"message_count\":\(info.messageCount)}"
        }
    }

    /// Views know a message from the moment it is decided; the log serves it once its batch is
    /// durable, which is also when its sender hears of it. A read that lists such a message
    /// waits for that (one fsync at most) instead of failing or showing what could still be lost.
    private func untilDurable(_ seq: UInt64?) async throws {
        guard let seq, seq > log.durableSeq else { return }
        try await log.waitUntilDurable(seq)
    }

    func participantsJSON(_ a: UInt32, _ b: UInt32) -> String {
        "[" + [a, b].map { "{\"id\":\($0),\"username\":\(jsonQuoted(views.users.username(of: $0) ?? ""))}" }.joined(separator: ",") + "]"
    }

    func messagesOfUser(_ userId: UInt32, after: UInt64, limit: Int) async throws -> [StoredMessage] {
        let seqs = views.conversations.messageSeqs(forUser: userId, after: after, limit: limit)
        try await untilDurable(seqs.last)
        return try seqs.map { try message(at: $0) }
    }
}

/// Tunables the Ledger decides with.
public struct LedgerSettings: Sendable {
    /// Refresh-token (session) lifetime, seconds.
    public var refreshLifetime: Int64

    public init(refreshLifetime: Int64) { self.refreshLifetime = refreshLifetime }
}

/// A frame for every open socket of `users` (but one).
struct Fanout: Sendable {
    var users: [UInt32]
    var exceptSocket: UInt64?
    var frame: WireFrame
}

/// A message as clients see it.
struct StoredMessage: Sendable {
    var id: UInt64
    var conversation: UInt32
    var sender: String
    var receiver: String
    var text: String
    var timestamp: Int64
    var clientId: String?
    var senderId: UInt32 = 0
}
