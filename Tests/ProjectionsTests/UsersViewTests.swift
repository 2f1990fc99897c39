import Testing
@testable import Projections

/// Users by id and case-insensitive name; activity times.
@Suite struct UsersViewTests {
    @Test func registrationAssignsDenseIdsAndCaseInsensitiveNames() {
        var s = Scenario()
        let alice = s.register("Alice")
        let bob = s.register("bob")
        let users = s.set.users
        #expect(alice == 1 && bob == 2)
        #expect(users.count == 2)
        #expect(users.nextUserId == 3)
        #expect(users.userId(named: "alice") == 1)
        #expect(users.userId(named: "ALICE") == 1)
        #expect(users.userId(named: "Bob") == 2)
        #expect(users.userId(named: "carol") == nil)
        let info = users.user(1)
        #expect(info?.account == .plain(username: "Alice", passwordHash: "pbkdf2_sha256$1$s$h"))
        #expect(info?.plainUsername == "Alice")
        #expect(info?.registeredAt == t0 + second)
        #expect(info?.lastLogin == nil)
        #expect(info?.lastActivity == t0 + second)
        #expect(users.user(0) == nil && users.user(3) == nil)
    }

    @Test func outOfOrderRegistrationIsIgnored() {
        var s = Scenario()
        _ = s.register("a")
        s.add(.userRegistered(UserRegistered(userId: 5, username: "gap", passwordHash: "h")))
        #expect(s.set.users.count == 1)
        #expect(s.set.users.userId(named: "gap") == nil)
    }

    @Test func loginRefreshAndMessagesAreActivity() {
        var s = Scenario()
        let a = s.register("a")
        let b = s.register("b")
        s.add(.userLoggedIn(UserLoggedIn(userId: a, sessionId: tok(1), refreshJti: tok(2), expiresAt: t0 + day)), after: minute)
        let loginTime = s.now
        #expect(s.set.users.user(a)?.lastLogin == loginTime)
        #expect(s.set.users.lastActivity(of: a) == loginTime)
        s.add(.tokenRefreshed(TokenRefreshed(sessionId: tok(1), retiredJti: tok(2), newJti: tok(3), expiresAt: t0 + 2 * day)), after: minute)
        #expect(s.set.users.lastActivity(of: a) == s.now)
        #expect(s.set.users.user(a)?.lastLogin == loginTime)
        s.add(.chatStarted(ChatStarted(conversation: 1, userA: a, userB: b)))
        s.add(.messageSent(MessageSent(conversation: 1, senderId: b, receiverId: a, text: "hi")), after: hour)
        #expect(s.set.users.lastActivity(of: b) == s.now)
        #expect(s.set.users.lastActivity(of: a) < s.now)
        #expect(s.set.users.lastActivity(of: 99) == 0)
    }
}
