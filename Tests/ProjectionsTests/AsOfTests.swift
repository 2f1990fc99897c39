import Testing
@testable import EventLog
@testable import Projections

/// State as of a seq or a time.
@Suite struct AsOfTests {
    /// a logs in at +1h (expires +3h), b at +2h (logs out at +4h), c at +5h.
    func scenario() -> Scenario {
        var s = Scenario()
        let a = s.register("a", after: 0)
        let b = s.register("b", after: 0)
        let c = s.register("c", after: 0)
        s.now = t0
        s.add(.userLoggedIn(UserLoggedIn(userId: a, sessionId: tok(1), refreshJti: tok(11), expiresAt: t0 + 3 * hour)), after: hour)
        s.add(.userLoggedIn(UserLoggedIn(userId: b, sessionId: tok(2), refreshJti: tok(12), expiresAt: t0 + day)), after: hour)
        s.add(.userLoggedOut(UserLoggedOut(sessionId: tok(2))), after: 2 * hour)
        s.add(.userLoggedIn(UserLoggedIn(userId: c, sessionId: tok(3), refreshJti: tok(13), expiresAt: t0 + day)), after: hour)
        return s
    }

    @Test func stateAtASeq() throws {
        let s = scenario()
        let atFive = try ProjectionSet.rebuild(scan: scanner(s.records), asOf: .seq(5))
        #expect(atFive.lastSeq == 5)
        #expect(atFive.sessions.count == 2)
        #expect(atFive.onlineUsers(now: atFive.lastTimestamp) == [1, 2])
        let none = try ProjectionSet.rebuild(scan: scanner(s.records), asOf: .seq(0))
        #expect(none == ProjectionSet())
        let all = try ProjectionSet.rebuild(scan: scanner(s.records), asOf: .seq(1_000))
        #expect(all == s.set)
    }

    @Test func whoWasOnlineAtATime() throws {
        let s = scenario()
        func online(at t: Int64) throws -> [UInt32] {
            try ProjectionSet.rebuild(scan: scanner(s.records), asOf: .time(t)).onlineUsers(now: t)
        }
        #expect(try online(at: t0 + 30 * minute) == [])
        #expect(try online(at: t0 + hour) == [1])
        #expect(try online(at: t0 + 2 * hour + minute) == [1, 2])
        // a's refresh token expired at +3h; nothing was written, the answer depends on the time asked.
        #expect(try online(at: t0 + 3 * hour) == [2])
        #expect(try online(at: t0 + 4 * hour) == [])
        #expect(try online(at: t0 + 5 * hour) == [3])
    }
}
