import EventLog
import Foundation
import Projections

/// Conversations and messages: starting chats, sends (texts sealed under the sender's key)
/// and every read that shows messages or people to a user.
extension Ledger {
    enum Receiver: Sendable {
        case name(String)
        case id(UInt32)
        /// A digit string: a username first, else a user id.
        case nameOrId(String, UInt32?)
    }

    /// The active user a receiver names; deleted users are unknown.
    func resolve(_ receiver: Receiver) -> UInt32? {
        switch receiver {
        case let .name(name): return activeUserId(named: name)
        case let .id(id): return views.users.isActive(id) ? id : nil
        case let .nameOrId(name, id):
            if let byName = activeUserId(named: name) { return byName }
            if let id, views.users.isActive(id) { return id }
            return nil
        }
    }

    func startChat(from token: VerifiedToken, with receiver: Receiver) async throws -> (conversation: UInt32, created: Bool, seq: UInt64?, participants: [(UInt32, String)]) {
        try await awaitTurn()
        guard isLive(token) else { throw APIError.tokenNotValid }
        let userId = token.userId
        guard let other = resolve(receiver) else { throw APIError(.notFound, "user_not_found", "Receiver not found.") }
        guard other != userId else { throw APIError.invalid("receiver_id", "You cannot start a chat with yourself.") }
        let names = [(userId, name(of: userId)), (other, name(of: other))]
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

    /// What a send from a session that has ended gets (its socket is closing anyway).
    static let sessionEnded = SendOutcome.rejected(code: "session_ended", detail: "This session has ended.")

    /// `onStored` runs inside the Ledger right after a new message is decided, with the users
    /// whose sockets get it, so callers register its deliveries in seq order (no later
    /// message's frames can overtake it).
    func send(from token: VerifiedToken, _ send: PreparedSend,
              onStored: (@Sendable (StoredMessage, [UInt32]) -> Void)? = nil) async throws -> SendOutcome {
        // Every suspension (the turn, a twin's durability) lets the world change: each pass
        // checks everything again and decides only if it did not have to wait.
        while true {
            try await awaitTurn()
            guard isLive(token), send.sender == token.userId else { return Self.sessionEnded }
            let sender = token.userId
            guard let receiver = activeUserId(nameKey: send.receiverKey, name: send.receiverName) else {
                return .rejected(code: "unknown_receiver", detail: "No user named \(send.receiverName).")
            }
            guard receiver != sender else { return .rejected(code: "invalid_frame", detail: "You cannot send a message to yourself.") }
            guard let conversation = views.conversations.conversation(between: sender, receiver) else {
                return .rejected(code: "chat_not_started", detail: "Start a chat with /api/chat/start/ first.")
            }
            if let clientId = send.clientId {
                switch try storedMessage(sender: sender, clientId: clientId) {
                case let .found(stored): return .duplicate(stored)
                case let .notDurable(seq):
                    try await log.waitUntilDurable(seq)
                    continue
                case .none: break
                }
            }
            let seq = try commit([.messageSent(MessageSent(
                conversation: conversation, senderId: sender, receiverId: receiver, body: .sealed(send.box), clientId: send.clientId))])
            let stored = StoredMessage(
                id: seq, conversation: conversation, sender: name(of: sender), receiver: name(of: receiver),
                text: send.text, timestamp: views.lastTimestamp, clientId: send.clientId)
            onStored?(stored, [receiver, sender])
            return .stored(stored)
        }
    }

    /// One send of a batch: `onStored` as in `send(from:_:onStored:)`.
    struct SendRequest: Sendable {
        let send: PreparedSend
        let onStored: @Sendable (StoredMessage, [UInt32]) -> Void
    }

    /// A socket's sends decided in order in one actor turn (one hop for the whole batch).
    func send(_ batch: [SendRequest], from token: VerifiedToken) async -> [Result<SendOutcome, any Error>] {
        var outcomes: [Result<SendOutcome, any Error>] = []
        outcomes.reserveCapacity(batch.count)
        for request in batch {
            do {
                outcomes.append(.success(try await send(from: token, request.send, onStored: request.onStored)))
            } catch {
                outcomes.append(.failure(error))
            }
        }
        return outcomes
    }

    /// What is stored under a client id: the view's index knows a message from the moment it is
    /// decided, so a retry racing its original is matched, never stored twice.
    enum ClientIdLookup {
        case found(StoredMessage)
        /// A candidate is not durable yet: wait for `seq`, then look again.
        case notDurable(UInt64)
        case none
    }

    /// The message `sender` already stored under `clientId`, if any. Candidates (the index keeps
    /// hashes) are read back and compared; one not yet durable cannot be read yet.
    private func storedMessage(sender: UInt32, clientId: String) throws -> ClientIdLookup {
        let durable = log.durableSeq
        for seq in views.conversations.messageSeqCandidates(sender: sender, clientId: clientId) {
            if seq > durable { return .notDurable(seq) }
            let m = try message(at: seq)
            if m.clientId == clientId, m.senderId == sender { return .found(m) }
        }
        return .none
    }

    /// A stored message read back from the log; its text is nil once its sender is erased.
    func message(at seq: UInt64) throws -> StoredMessage {
        let record = try log.read(seq: seq)
        guard case let .messageSent(m) = try Event.decode(record) else { throw EventLogError.notFound(seq) }
        return StoredMessage(id: seq, conversation: m.conversation, sender: name(of: m.senderId),
                             receiver: name(of: m.receiverId), text: text(of: m), timestamp: record.timestamp,
                             clientId: m.clientId, senderId: m.senderId)
    }

    /// The text of `m`, opened with its sender's key; nil if the sender is erased.
    func text(of m: MessageSent) -> String? {
        guard views.users.isActive(m.senderId) else { return nil }
        switch m.body {
        case .plain(let text):
            return text
        case .sealed(let box):
            guard let key = keys.key(for: m.senderId),
                  let plain = try? SealedBox.open(box, field: .messageText, owner: m.senderId, key: key) else { return nil }
            return String(decoding: plain, as: UTF8.self)
        }
    }

    // MARK: reads

    func onlineUsers(limit: Int, offset: Int) -> (count: Int, entries: [String]) {
        let now = nowMicros
        var named = views.sessions.onlineUserIds(now: now).filter { views.users.isActive($0) }.map { ($0, name(of: $0)) }
        named.sort { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        let page = offset >= named.count ? [] : Array(named[offset..<min(named.count, offset + limit)])
        let entries = page.compactMap { id, name -> String? in
            guard let user = views.users.user(id) else { return nil }
            let lastLogin = user.lastLogin.map { jsonQuoted(formatTimestamp($0)) } ?? "null"
            return "{\"id\":\(id),\"username\":\(jsonQuoted(name)),\"last_login\":\(lastLogin),\"connected\":\(views.isConnected(id))}"
        }
        return (named.count, entries)
    }

    func userExists(_ id: UInt32) -> Bool { views.users.isActive(id) }

    func suggestions(for userId: UInt32, limit: Int) -> [String] {
        views.suggestions(for: userId, limit: limit).map { s in
            "{\"id\":\(s.userId),\"username\":\(jsonQuoted(name(of: s.userId))),\"mutual_friends\":\(s.mutualFriends),\"score\":\(s.score)}"
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
    func untilDurable(_ seq: UInt64?) async throws {
        guard let seq, seq > log.durableSeq else { return }
        try await log.waitUntilDurable(seq)
    }

    func participantsJSON(_ a: UInt32, _ b: UInt32) -> String {
        "[" + [a, b].map { "{\"id\":\($0),\"username\":\(jsonQuoted(name(of: $0)))}" }.joined(separator: ",") + "]"
    }

    func messagesOfUser(_ userId: UInt32, after: UInt64, limit: Int) async throws -> [StoredMessage] {
        let seqs = views.conversations.messageSeqs(forUser: userId, after: after, limit: limit)
        try await untilDurable(seqs.last)
        return try seqs.map { try message(at: $0) }
    }
}

/// A send's costly parts, done on the caller's thread before the Ledger's turn: the Ledger is
/// the one serial point, so what can run in parallel (the receiver's name key, an HMAC; the
/// text sealed under the sender's key, AES-GCM) must not run there.
struct PreparedSend: Sendable {
    let sender: UInt32
    let receiverName: String
    let receiverKey: NameKey
    let text: String
    let box: [UInt8]
    let clientId: String?

    /// Nil when the sender has no key (their account was just deleted). `receiverKey` is the
    /// receiver name's key, if the caller has it at hand (`ReceiverKeys`).
    init?(sender: UInt32, receiver: String, receiverKey: NameKey? = nil, text: String, clientId: String?, keys: KeyStore) throws {
        guard let key = keys.key(for: sender) else { return nil }
        self.sender = sender
        receiverName = receiver
        self.receiverKey = receiverKey ?? keys.nameIndex.nameKey(for: receiver)
        self.text = text
        box = try SealedBox.seal(Array(text.utf8), field: .messageText, owner: sender, key: key)
        self.clientId = clientId
    }
}

/// One socket's receivers' name keys: a socket mostly writes to the same few people, so their
/// HMACs are computed once, not per message. Touched by the socket's own task only.
final class ReceiverKeys: @unchecked Sendable {
    private var keys: [String: NameKey] = [:]
    private let index: NameIndexKey

    init(index: NameIndexKey) { self.index = index }

    func key(for receiver: String) -> NameKey {
        if let known = keys[receiver] { return known }
        if keys.count >= 256 { keys.removeAll(keepingCapacity: true) }
        let key = index.nameKey(for: receiver)
        keys[receiver] = key
        return key
    }
}

/// A message as clients see it; `text` is nil once its sender's account is erased.
struct StoredMessage: Sendable {
    var id: UInt64
    var conversation: UInt32
    var sender: String
    var receiver: String
    var text: String?
    var timestamp: Int64
    var clientId: String?
    var senderId: UInt32 = 0

    var erased: Bool { text == nil }
}
