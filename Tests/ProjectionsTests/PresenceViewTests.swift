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

    @Test func nodesOfASharedLogKeepEachOthersSocketsUntilOneLeaves() {
        var s = Scenario()
        let a = s.register("a")
        let b = s.register("b")
        s.add(.serverStarted(ServerStarted(epoch: 1, shared: true)))
        s.add(.serverStarted(ServerStarted(epoch: 2, shared: true)))
        s.add(.socketConnected(SocketConnected(userId: a, socketId: 1 << 32 | 1)))
        s.add(.socketConnected(SocketConnected(userId: b, socketId: 2 << 32 | 1)))
        s.add(.socketConnected(SocketConnected(userId: b, socketId: 1 << 32 | 2)))
        // A third node joining closes nobody's sockets.
        s.add(.serverStarted(ServerStarted(epoch: 3, shared: true)))
        #expect(s.set.isConnected(a) && s.set.isConnected(b))
        #expect(s.set.presence.epoch == 3)
        #expect(s.set.presence.userIds(withSocketsOf: 1) == [a, b])
        s.add(.nodeLeft(NodeLeft(epoch: 1)))
        #expect(!s.set.isConnected(a), "a's only socket was on the node that left")
        #expect(s.set.presence.socketIds(of: b) == [2 << 32 | 1], "b's socket on node 2 stays")
        #expect(s.set.presence.userIds(withSocketsOf: 1).isEmpty)
    }
}
