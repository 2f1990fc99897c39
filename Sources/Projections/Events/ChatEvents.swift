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
/// Schema history: v1 had no `clientId`; v2 adds it; v3 (current) seals the text under the
/// sender's data key.
public struct MessageSent: Sendable, Equatable {
    public var conversation: UInt32
    public var senderId: UInt32
    public var receiverId: UInt32
    public var body: Body
    /// The sender's idempotency key, if any (at most 64 characters). Not personal: clients
    /// make them up (the web client uses random UUIDs), and the server matches retries by it.
    public var clientId: String?

    /// The text, in clear (v1, v2) or sealed (v3).
    public enum Body: Sendable, Equatable {
        case plain(String)
        /// Seals the UTF-8 text under the sender's key (`PersonalField.messageText`).
        case sealed([UInt8])
    }

    public init(conversation: UInt32, senderId: UInt32, receiverId: UInt32, body: Body, clientId: String? = nil) {
        self.conversation = conversation
        self.senderId = senderId
        self.receiverId = receiverId
        self.body = body
        self.clientId = clientId
    }

    /// A plaintext (v2) message, as logs before encryption hold them.
    public init(conversation: UInt32, senderId: UInt32, receiverId: UInt32, text: String, clientId: String? = nil) {
        self.init(conversation: conversation, senderId: senderId, receiverId: receiverId, body: .plain(text), clientId: clientId)
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
        MessageSent(conversation: conversation, senderId: senderId, receiverId: receiverId, body: .plain(text), clientId: nil)
    }
}
