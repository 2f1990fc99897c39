import Testing
@testable import Projections

/// Sessions: login, rotation, logout, reuse revocation, expiry at a given time.
@Suite struct SessionsViewTests {
    @Test func loginOpensSessionUntilExpiry() {
        var s = Scenario()
        let a = s.register("a")
        s.add(.userLoggedIn(UserLoggedIn(userId: a, sessionId: tok(1), refreshJti: tok(2), expiresAt: t0 + day)))
        let info = s.set.sessions.session(tok(1))
        #expect(info?.userId == a)
        #expect(info?.currentJti == tok(2))
        #expect(info?.retiredJtis.isEmpty == true)
        #expect(info?.state == .open)
        #expect(s.set.sessions.isOpen(tok(1), now: s.now))
        #expect(s.set.sessions.isOpen(tok(1), now: t0 + day - 1))
        #expect(!s.set.sessions.isOpen(tok(1), now: t0 + day))
        #expect(s.set.isOnline(a, now: s.now))
        #expect(!s.set.isOnline(a, now: t0 + day))
        #expect(s.set.sessions.openSessionCount(a, now: s.now) == 1)
        #expect(s.set.sessions.openSessionCount(a, now: t0 + day) == 0)
        #expect(!s.set.sessions.isOpen(tok(9), now: s.now))
    }

    @Test func refreshRotatesAndSlidesExpiry() {
        var s = Scenario()
        let a = s.register("a")
        s.add(.userLoggedIn(UserLoggedIn(userId: a, sessionId: tok(1), refreshJti: tok(2), expiresAt: t0 + day)))
        s.add(.tokenRefreshed(TokenRefreshed(sessionId: tok(1), retiredJti: tok(2), newJti: tok(3), expiresAt: t0 + 2 * day)))
        s.add(.tokenRefreshed(TokenRefreshed(sessionId: tok(1), retiredJti: tok(3), newJti: tok(4), expiresAt: t0 + 3 * day)))
        let info = s.set.sessions.session(tok(1))
        #expect(info?.currentJti == tok(4))
        #expect(info?.retiredJtis == [tok(2), tok(3)])
        #expect(info?.expiresAt == t0 + 3 * day)
        #expect(s.set.isOnline(a, now: t0 + 2 * day + hour))
    }

    @Test func logoutAndRevokeEndSessionsIndependently() {
        var s = Scenario()
        let a = s.register("a")
        s.add(.userLoggedIn(UserLoggedIn(userId: a, sessionId: tok(1), refreshJti: tok(2), expiresAt: t0 + day)))
        s.add(.userLoggedIn(UserLoggedIn(userId: a, sessionId: tok(5), refreshJti: tok(6), expiresAt: t0 + day)))
        #expect(s.set.sessions.openSessionCount(a, now: s.now) == 2)
        #expect(s.set.sessions.openSessionIds(of: a, now: s.now) == [tok(1), tok(5)])

        s.add(.userLoggedOut(UserLoggedOut(sessionId: tok(1))))
        #expect(s.set.sessions.session(tok(1))?.state == .loggedOut)
        #expect(s.set.sessions.session(tok(1))?.endedAt == s.now)
        #expect(!s.set.sessions.isOpen(tok(1), now: s.now))
        #expect(s.set.isOnline(a, now: s.now))

        s.add(.tokenRefreshed(TokenRefreshed(sessionId: tok(5), retiredJti: tok(6), newJti: tok(7), expiresAt: t0 + day)))
        s.add(.sessionRevoked(SessionRevoked(sessionId: tok(5), retiredJti: tok(6))))
        #expect(s.set.sessions.session(tok(5))?.state == .revoked)
        #expect(!s.set.isOnline(a, now: s.now))
        #expect(s.set.sessions.openSessionCount(a, now: s.now) == 0)
        #expect(s.set.onlineUsers(now: s.now).isEmpty)

        // An ended session stays ended.
        s.add(.userLoggedOut(UserLoggedOut(sessionId: tok(5))))
        #expect(s.set.sessions.session(tok(5))?.state == .revoked)
    }

    @Test func onlineUsersAreSortedByUsername() {
        var s = Scenario()
        let names = ["mallory", "Bob", "alice", "carol", "dave"]
        for (i, name) in names.enumerated() {
            let id = s.register(name)
            if name != "dave" {
                let expiry = name == "carol" ? t0 + hour : t0 + day
                s.add(.userLoggedIn(UserLoggedIn(userId: id, sessionId: tok(UInt64(i + 1)), refreshJti: tok(UInt64(100 + i)), expiresAt: expiry)))
            }
        }
        let byName = { (n: String) in s.set.users.userId(named: n)! }
        #expect(s.set.onlineUsers(now: s.now) == [byName("Bob"), byName("alice"), byName("carol"), byName("mallory")])
        #expect(s.set.onlineUsers(now: t0 + 2 * hour) == [byName("Bob"), byName("alice"), byName("mallory")])
    }
}
