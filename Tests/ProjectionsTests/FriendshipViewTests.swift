import Testing
@testable import Projections

/// Friendship from shared conversations and ranked suggestions.
@Suite struct FriendshipViewTests {
    /// Starts a chat between each pair, in order.
    func scenario(users: Int, chats: [(UInt32, UInt32)]) -> Scenario {
        var s = Scenario()
        for i in 1...users { _ = s.register("u\(i)") }
        for (a, b) in chats {
            s.add(.chatStarted(ChatStarted(conversation: s.set.conversations.nextConversationNumber, userA: a, userB: b)))
        }
        return s
    }

    @Test func sharingAConversationMakesFriends() {
        let s = scenario(users: 3, chats: [(1, 2)])
        #expect(s.set.friendship.areFriends(1, 2))
        #expect(s.set.friendship.areFriends(2, 1))
        #expect(!s.set.friendship.areFriends(1, 3))
        #expect(s.set.friendship.friends(of: 1) == [2])
        #expect(s.set.friendship.friends(of: 3).isEmpty)
        #expect(s.set.friendship.edgeCount == 1)
    }

    @Test func suggestionsRankByMutualsThenActivityThenId() {
        // 1's friends: 2, 3, 4. Friends of friends: 5 (via 2, 3, 4), 6 (via 2, 3), 7 (via 2), 8 (via 3).
        var s = scenario(users: 9, chats: [(1, 2), (1, 3), (1, 4), (2, 5), (3, 5), (4, 5), (2, 6), (3, 6), (2, 7), (3, 8), (9, 2)])
        // 9 is also a friend of 2 only; make 8 the most recently active of the one-mutual group.
        s.add(.userLoggedIn(UserLoggedIn(userId: 8, sessionId: tok(1), refreshJti: tok(2), expiresAt: t0 + day)), after: hour)
        let result = s.set.suggestions(for: 1, limit: 10)
        #expect(result.map(\.userId) == [5, 6, 8, 9, 7])
        #expect(result.map(\.mutualFriends) == [3, 2, 1, 1, 1])
        #expect(result.map(\.score) == [3, 2, 1, 1, 1])
        // 7 and 9 tie on mutuals; 9 registered later, so it is more recently active.
        #expect(s.set.suggestions(for: 1, limit: 2).map(\.userId) == [5, 6])
        #expect(s.set.suggestions(for: 1, limit: 0).isEmpty)
    }

    @Test func equalActivityBreaksTiesByLowerId() {
        var f = FriendshipView()
        for (a, b): (UInt32, UInt32) in [(1, 2), (2, 7), (2, 4), (2, 9)] {
            f.apply(.chatStarted(ChatStarted(conversation: 1, userA: a, userB: b)), seq: 1, timestamp: 0)
        }
        let result = f.suggestions(for: 1, limit: 5, userCount: 9) { _ in 42 }
        #expect(result.map(\.userId) == [4, 7, 9])
    }

    @Test func neverSuggestsSelfOrFriends() {
        // A triangle: everyone is already a friend of everyone.
        let s = scenario(users: 4, chats: [(1, 2), (2, 3), (1, 3)])
        let result = s.set.suggestions(for: 1, limit: 10)
        #expect(result.map(\.userId) == [4])
        #expect(result.first?.mutualFriends == 0)
    }

    @Test func fallsBackToMostRecentlyActiveUsers() {
        var s = scenario(users: 5, chats: [(1, 2)])
        s.add(.userLoggedIn(UserLoggedIn(userId: 3, sessionId: tok(1), refreshJti: tok(2), expiresAt: t0 + day)), after: hour)
        // 1 has friend 2, but 2 has no other friends: no friends of friends.
        let result = s.set.suggestions(for: 1, limit: 10)
        #expect(result.map(\.userId) == [3, 5, 4])
        #expect(result.allSatisfy { $0.mutualFriends == 0 && $0.score == 0 })
        // A user without any friends gets the same kind of list.
        #expect(s.set.suggestions(for: 5, limit: 2).map(\.userId) == [3, 4])
    }

    @Test func userWithTenThousandFriendsIsFast() {
        var f = FriendshipView()
        let hub: UInt32 = 1
        for i: UInt32 in 2...10_001 {
            f.apply(.chatStarted(ChatStarted(conversation: i, userA: hub, userB: i)), seq: UInt64(i), timestamp: 0)
        }
        // Leaves 2...101 each have one more friend outside the hub's circle.
        for i: UInt32 in 2...101 {
            f.apply(.chatStarted(ChatStarted(conversation: i, userA: i, userB: 20_000 + i % 10)), seq: UInt64(i), timestamp: 0)
        }
        let clock = ContinuousClock()
        var hubResult: [Suggestion] = []
        var leafResult: [Suggestion] = []
        let elapsed = clock.measure {
            hubResult = f.suggestions(for: hub, limit: 5, userCount: 30_000) { Int64($0) }
            leafResult = f.suggestions(for: 5000, limit: 5, userCount: 30_000) { Int64($0) }
        }
        #expect(hubResult.map(\.userId) == [20_009, 20_008, 20_007, 20_006, 20_005])
        #expect(hubResult.allSatisfy { $0.mutualFriends == 10 })
        // A leaf's friends of friends are the hub's other 9,999 friends, one mutual each: most active first.
        #expect(leafResult.map(\.userId) == [10_001, 10_000, 9_999, 9_998, 9_997])
        #expect(elapsed < .seconds(1))
    }
}
