/// Two users start a conversation (which makes them friends).
public struct ChatStarted: Sendable, Equatable {
    /// The server-assigned number 1, 2, 3, ...; shown to clients as `publicConversationId`.
    public var conversation: UInt32
    /// The user who started it.
    public var userA: UInt32
    /// The user it was started with.
    public var userB: UInt32

    public init(conversation: UInt32, userA: UInt32, userB: UInt32) {
        self.conversation = conversation
        self.userA = userA
        self.userB = userB
    }
}

/// A chat message. Its id is the record's seq.
///
/// Schema history: v1 had no `clientId`; v2 (current) adds it.
public struct MessageSent: Sendable, Equatable {
    public var conversation: UInt32
    public var senderId: UInt32
    public var receiverId: UInt32
    public var text: String
    /// The sender's idempotency key, if any (at most 64 characters).
    public var clientId: String?

    public init(conversation: UInt32, senderId: UInt32, receiverId: UInt32, text: String, clientId: String? = nil) {
        self.conversation = conversation
        self.senderId = senderId
        self.receiverId = receiverId
        self.text = text
        self.clientId = clientId
    }
}

/// MessageSent as schema v1 wrote it; only ever decoded, then upcast.
struct MessageSentV1: Equatable {
    var conversation: UInt32
    var senderId: UInt32
    var receiverId: UInt32
    var text: String

    /// v1 → v2: messages from before idempotency keys have none.
    var upcast: MessageSent {
        MessageSent(conversation: conversation, senderId: senderId, receiverId: receiverId, text: text, clientId: nil)
    }
}
