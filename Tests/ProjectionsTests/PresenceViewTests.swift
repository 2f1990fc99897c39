import Testing
@testable import Projections

/// Sockets per user and server epochs.
@Suite struct PresenceViewTests {
    @Test func socketsCountPerUser() {
        var s = Scenario()
        let a = s.register("a")
        let b = s.register("b")
        s.add(.serverStarted(ServerStarted(epoch: 1)))
        s.add(.socketConnected(SocketConnected(userId: a, socketId: 1)))
        s.add(.socketConnected(SocketConnected(userId: a, socketId: 2)))
        s.add(.socketConnected(SocketConnected(userId: b, socketId: 3)))
        #expect(s.set.isConnected(a) && s.set.isConnected(b))
        #expect(s.set.presence.connectedSocketCount(a) == 2)
        #expect(s.set.presence.connectedUserIds == [a, b])
        s.add(.socketDisconnected(SocketDisconnected(userId: a, socketId: 1)))
        #expect(s.set.presence.connectedSocketCount(a) == 1)
        s.add(.socketDisconnected(SocketDisconnected(userId: a, socketId: 2)))
        #expect(!s.set.isConnected(a))
        #expect(s.set.presence.connectedSocketCount(a) == 0)
        // Connected is independent of online: b never logged in.
        #expect(!s.set.isOnline(b, now: s.now))
    }

    @Test func serverStartClosesEarlierEpochsSockets() {
        var s = Scenario()
        let a = s.register("a")
        s.add(.serverStarted(ServerStarted(epoch: 1)))
        s.add(.socketConnected(SocketConnected(userId: a, socketId: 1)))
        s.add(.serverStarted(ServerStarted(epoch: 2)))
        #expect(!s.set.isConnected(a))
        #expect(s.set.presence.epoch == 2)
        #expect(s.set.presence.epochStartedAt == s.now)
        // A late disconnect of the old epoch's socket changes nothing.
        s.add(.socketDisconnected(SocketDisconnected(userId: a, socketId: 1)))
        #expect(!s.set.isConnected(a))
        s.add(.socketConnected(SocketConnected(userId: a, socketId: 1)))
        #expect(s.set.isConnected(a))
    }
}
