import Testing
@testable import Projections

/// Conversations: lookup, history paging, idempotency index, sync merge.
@Suite struct ConversationsViewTests {
    /// Users 1...4; conversations 1 = (1, 2), 2 = (3, 1), 3 = (2, 3).
    func scenario() -> Scenario {
        var s = Scenario()
        for name in ["a", "b", "c", "d"] { _ = s.register(name) }
        s.add(.chatStarted(ChatStarted(conversation: 1, userA: 1, userB: 2)))
        s.add(.chatStarted(ChatStarted(conversation: 2, userA: 3, userB: 1)))
        s.add(.chatStarted(ChatStarted(conversation: 3, userA: 2, userB: 3)))
        return s
    }

    @discardableResult
    func send(_ s: inout Scenario, _ conversation: UInt32, _ from: UInt32, _ to: UInt32, clientId: String? = nil) -> UInt64 {
        s.add(.messageSent(MessageSent(conversation: conversation, senderId: from, receiverId: to, text: "m", clientId: clientId)))
    }

    @Test func pairsAndUsers() {
        let s = scenario()
        let v = s.set.conversations
        #expect(v.conversation(between: 1, 2) == 1)
        #expect(v.conversation(between: 2, 1) == 1)
        #expect(v.conversation(between: 1, 3) == 2)
        #expect(v.conversation(between: 1, 4) == nil)
        #expect(v.conversations(of: 1) == [1, 2])
        #expect(v.conversations(of: 3) == [2, 3])
        #expect(v.conversations(of: 4) == [])
        let info = v.conversation(2)
        #expect(info?.userA == 3 && info?.userB == 1)
        #expect(info?.id == publicConversationId(2))
        #expect(info?.messageCount == 0 && info?.lastMessageSeq == nil && info?.lastMessageTime == nil)
        #expect(info?.otherParticipant(than: 1) == 3)
        #expect(v.conversation(0) == nil && v.conversation(4) == nil)
        #expect(v.nextConversationNumber == 4)
    }

    @Test func duplicatePairsAndGapsAreIgnored() {
        var s = scenario()
        s.add(.chatStarted(ChatStarted(conversation: 4, userA: 2, userB: 1)))
        s.add(.chatStarted(ChatStarted(conversation: 9, userA: 1, userB: 4)))
        #expect(s.set.conversations.conversationCount == 3)
        #expect(s.set.conversations.conversation(between: 1, 4) == nil)
        // No conversation, no friendship.
        #expect(!s.set.friendship.areFriends(1, 4))
    }

    @Test func messagesPageByPosition() {
        var s = scenario()
        var inOne: [UInt64] = []
        for i in 0..<10 {
            inOne.append(send(&s, 1, i % 2 == 0 ? 1 : 2, i % 2 == 0 ? 2 : 1))
            send(&s, 3, 2, 3)
        }
        let v = s.set.conversations
        #expect(v.messageSeqs(in: 1) == inOne)
        #expect(v.messages(in: 1, after: 0, limit: 3) == Array(inOne[0..<3]))
        #expect(v.messages(in: 1, after: inOne[2], limit: 3) == Array(inOne[3..<6]))
        #expect(v.messages(in: 1, after: inOne[2] + 1, limit: 3) == Array(inOne[3..<6]))
        #expect(v.messages(in: 1, after: inOne[9], limit: 3) == [])
        #expect(v.messages(in: 1, after: 0, limit: 0) == [])
        #expect(v.messages(in: 9, after: 0, limit: 5) == [])
        let info = v.conversation(1)
        #expect(info?.messageCount == 10)
        #expect(info?.lastMessageSeq == inOne[9])
        #expect(info?.lastMessageTime == s.records[Int(inOne[9]) - 1].timestamp)
        #expect(v.messageCount == 20)
    }

    @Test func messagesOutsideTheConversationAreIgnored() {
        var s = scenario()
        send(&s, 1, 1, 3)  // 3 is not in conversation 1
        send(&s, 1, 1, 1)
        send(&s, 7, 1, 2)  // no such conversation
        #expect(s.set.conversations.messageCount == 0)
        // A seq that does not advance (the live path trusts its caller) is ignored too.
        s.set.apply(.messageSent(MessageSent(conversation: 1, senderId: 1, receiverId: 2, text: "x")), seq: 100, timestamp: s.now)
        s.set.apply(.messageSent(MessageSent(conversation: 1, senderId: 1, receiverId: 2, text: "x")), seq: 50, timestamp: s.now)
        #expect(s.set.conversations.messageSeqs(in: 1) == [100])
    }

    @Test func clientIdIndexIsPerSender() {
        var s = scenario()
        let first = send(&s, 1, 1, 2, clientId: "abc")
        send(&s, 1, 2, 1, clientId: "abc")
        let v = s.set.conversations
        #expect(v.messageSeq(sender: 1, clientId: "abc") == first)
        #expect(v.messageSeq(sender: 2, clientId: "abc") == first + 1)
        #expect(v.messageSeq(sender: 3, clientId: "abc") == nil)
        #expect(v.messageSeq(sender: 1, clientId: "abd") == nil)
        #expect(v.messageSeqCandidates(sender: 1, clientId: "abc") == [first])
        // A duplicate (which the Ledger never stores) comes back as a second candidate; the oldest is first.
        let again = send(&s, 1, 1, 2, clientId: "abc")
        #expect(s.set.conversations.messageSeq(sender: 1, clientId: "abc") == first)
        #expect(s.set.conversations.messageSeqCandidates(sender: 1, clientId: "abc") == [first, again])
    }

    @Test func syncMergesAUsersConversationsInOrder() {
        var s = scenario()
        var forUser1: [UInt64] = []
        var rng = SeededRNG(seed: 1)
        for _ in 0..<200 {
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: forUser1.append(send(&s, 1, 2, 1))
            case 1: forUser1.append(send(&s, 2, 1, 3))
            default: send(&s, 3, 3, 2)
            }
        }
        let v = s.set.conversations
        #expect(v.messageSeqs(forUser: 1, after: 0) == forUser1)
        #expect(v.messageSeqs(forUser: 1, after: forUser1[50]) == Array(forUser1[51...]))
        #expect(v.messageSeqs(forUser: 1, after: forUser1[50], limit: 7) == Array(forUser1[51..<58]))
        #expect(v.messageSeqs(forUser: 4, after: 0) == [])
        #expect(v.messageSeqs(forUser: 1, after: UInt64.max) == [])
    }

    @Test func recencyOrderPutsLatestMessageFirst() {
        var s = scenario()
        send(&s, 2, 3, 1)
        send(&s, 1, 1, 2)
        #expect(s.set.conversations.conversationsByRecency(of: 1) == [1, 2])
        #expect(s.set.conversations.conversationsByRecency(of: 2) == [1, 3])
        send(&s, 2, 1, 3)
        #expect(s.set.conversations.conversationsByRecency(of: 1) == [2, 1])
    }
}
