import HeapModule

/// A conversation's summary for API answers (no message text: that stays in the log).
public struct ConversationInfo: Sendable, Equatable {
    public var number: UInt32
    /// `publicConversationId(number)`.
    public var id: String { publicConversationId(number) }
    /// The starter.
    public var userA: UInt32
    /// The user it was started with.
    public var userB: UInt32
    public var startedAt: Int64
    public var startedSeq: UInt64
    public var messageCount: Int
    public var lastMessageSeq: UInt64?
    public var lastMessageTime: Int64?

    public func involves(_ userId: UInt32) -> Bool { userA == userId || userB == userId }

    /// The participant that is not `userId`.
    public func otherParticipant(than userId: UInt32) -> UInt32 { userA == userId ? userB : userA }
}

/// What the view stores per conversation: message positions only, about 4 bytes each.
struct ConversationState: Sendable, Equatable {
    var userA: UInt32
    var userB: UInt32
    var startedAt: Int64
    var startedSeq: UInt64
    var lastMessageTime: Int64
    /// Ascending seqs of the messages; a message's id is its seq.
    var seqs: MessagePositions
}

/// Conversations by number, by participant pair and by user; message positions for
/// history paging; and the client-id index that makes sends idempotent.
public struct ConversationsView: Projection {
    public static let version = 1

    /// `conversations[number - 1]`.
    var conversations: [ConversationState] = []
    /// `pairKey(a, b)` → number.
    var byPair: [UInt64: UInt32] = [:]
    /// Each user's conversation numbers in creation order.
    var byUser: [UInt32: [UInt32]] = [:]
    /// `clientIdKey(sender:clientId:)` → seq, compact and approximate (see ClientIdIndex):
    /// the caller confirms a hit by reading the message from the log.
    var clientIndex = ClientIdIndex()
    public internal(set) var messageCount = 0

    public init() {}

    public var conversationCount: Int { conversations.count }
    public var nextConversationNumber: UInt32 { UInt32(conversations.count + 1) }

    static func pairKey(_ a: UInt32, _ b: UInt32) -> UInt64 {
        UInt64(min(a, b)) << 32 | UInt64(max(a, b))
    }

    private func state(_ number: UInt32) -> ConversationState? {
        guard number >= 1, Int(number) <= conversations.count else { return nil }
        return conversations[Int(number) - 1]
    }

    public func conversation(_ number: UInt32) -> ConversationInfo? {
        guard let s = state(number) else { return nil }
        return ConversationInfo(
            number: number, userA: s.userA, userB: s.userB, startedAt: s.startedAt, startedSeq: s.startedSeq,
            messageCount: s.seqs.count, lastMessageSeq: s.seqs.last,
            lastMessageTime: s.seqs.isEmpty ? nil : s.lastMessageTime)
    }

    /// The conversation of an unordered pair.
    public func conversation(between a: UInt32, _ b: UInt32) -> UInt32? {
        byPair[Self.pairKey(a, b)]
    }

    /// `userId`'s conversations in the order they were started.
    public func conversations(of userId: UInt32) -> [UInt32] { byUser[userId] ?? [] }

    /// `userId`'s conversations, latest message first; those without messages last, newest first.
    public func conversationsByRecency(of userId: UInt32) -> [UInt32] {
        conversations(of: userId).sorted { a, b in
            let la = state(a)?.seqs.last ?? 0
            let lb = state(b)?.seqs.last ?? 0
            return la != lb ? la > lb : a > b
        }
    }

    public func messageCount(in number: UInt32) -> Int { state(number)?.seqs.count ?? 0 }

    /// All message seqs of a conversation, ascending.
    public func messageSeqs(in number: UInt32) -> [UInt64] { state(number)?.seqs.all ?? [] }

    /// Up to `limit` message seqs greater than `after`, ascending.
    public func messages(in number: UInt32, after: UInt64, limit: Int) -> [UInt64] {
        guard limit > 0, let seqs = state(number)?.seqs else { return [] }
        let start = seqs.firstIndex(after: after)
        return seqs.seqs(start..<(start + min(limit, seqs.count - start)))
    }

    /// Seqs of messages that may be the one `sender` sent with `clientId`, oldest first.
    /// The index keeps hashes, so confirm each against the stored message (sender and
    /// client id); almost always there is at most one, and it matches.
    public func messageSeqCandidates(sender: UInt32, clientId: String) -> [UInt64] {
        clientIndex.candidates(clientIdKey(sender: sender, clientId: clientId))
    }

    /// The oldest candidate of `messageSeqCandidates`. If it turns out not to match,
    /// look at the other candidates before concluding the message is new.
    public func messageSeq(sender: UInt32, clientId: String) -> UInt64? {
        messageSeqCandidates(sender: sender, clientId: clientId).first
    }

    /// Every message to or from `userId` with a seq greater than `after`, ascending,
    /// at most `limit`: a k-way merge of the user's conversations (for WebSocket `sync`).
    public func messageSeqs(forUser userId: UInt32, after: UInt64, limit: Int = .max) -> [UInt64] {
        guard limit > 0, let numbers = byUser[userId] else { return [] }
        var cursors = Heap<MergeCursor>()
        for number in numbers {
            let seqs = conversations[Int(number) - 1].seqs
            let start = seqs.firstIndex(after: after)
            if start < seqs.count {
                cursors.insert(MergeCursor(seq: seqs[start], conversationIndex: Int(number) - 1, position: start))
            }
        }
        var result: [UInt64] = []
        while result.count < limit, let top = cursors.popMin() {
            result.append(top.seq)
            let seqs = conversations[top.conversationIndex].seqs
            let next = top.position + 1
            if next < seqs.count {
                cursors.insert(MergeCursor(seq: seqs[next], conversationIndex: top.conversationIndex, position: next))
            }
        }
        return result
    }

    public mutating func apply(_ event: Event, seq: UInt64, timestamp: Int64) {
        switch event {
        case .chatStarted(let e):
            start(e, seq: seq, timestamp: timestamp)
        case .messageSent(let e):
            let key = e.clientId.map { clientIdKey(sender: e.senderId, clientId: $0) }
            appendMessage(
                conversation: e.conversation, sender: e.senderId, receiver: e.receiverId,
                clientKey: key, seq: seq, timestamp: timestamp)
        default:
            break
        }
    }

    mutating func start(_ e: ChatStarted, seq: UInt64, timestamp: Int64) {
        let pair = Self.pairKey(e.userA, e.userB)
        guard e.conversation == nextConversationNumber, byPair[pair] == nil else { return }
        conversations.append(ConversationState(
            userA: e.userA, userB: e.userB, startedAt: timestamp, startedSeq: seq, lastMessageTime: 0,
            seqs: MessagePositions(base: seq)))
        byPair[pair] = e.conversation
        byUser[e.userA, default: []].append(e.conversation)
        if e.userB != e.userA { byUser[e.userB, default: []].append(e.conversation) }
    }

    /// Shared by `apply` and the replay fast path, so both build identical state.
    mutating func appendMessage(
        conversation: UInt32, sender: UInt32, receiver: UInt32, clientKey: UInt64?, seq: UInt64, timestamp: Int64
    ) {
        guard conversation >= 1, Int(conversation) <= conversations.count else { return }
        let i = Int(conversation) - 1
        // Read fields in place: holding a copy of the element would share its `seqs`
        // buffer and turn the append below into a full copy.
        let a = conversations[i].userA
        let b = conversations[i].userB
        // Paging relies on ascending seqs; messages must be between the participants.
        guard (sender == a && receiver == b) || (sender == b && receiver == a),
              seq > (conversations[i].seqs.last ?? 0)
        else { return }
        conversations[i].seqs.append(seq)
        conversations[i].lastMessageTime = timestamp
        messageCount += 1
        if let clientKey { clientIndex.insert(clientKey, seq: seq) }
    }
}

/// One conversation's position in the `messageSeqs(forUser:)` merge.
struct MergeCursor: Comparable {
    var seq: UInt64
    var conversationIndex: Int
    var position: Int

    static func < (a: MergeCursor, b: MergeCursor) -> Bool { a.seq < b.seq }
    static func == (a: MergeCursor, b: MergeCursor) -> Bool { a.seq == b.seq }
}
