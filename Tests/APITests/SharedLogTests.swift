import Foundation
import PostgresTestSupport
import Testing
@testable import API
import EventLog
import Projections

/// Two nodes on one PostgreSQL log, in one process: decisions stay in one order across them
/// (unique names, one stored message per client id), each node learns the other's events and
/// keys, and a node's sockets count as closed once it is gone.
@Suite(.enabled(if: PostgresTestServer.available, "needs PostgreSQL (CHAT_ES_TEST_POSTGRES or Debian's postgresql)"))
struct SharedLogTests {
    /// Two started nodes on one fresh database, each on its own data directory.
    private func twoNodes() async throws -> (ChatService, ChatService, [TestData]) {
        let url = try await PostgresTestServer.freshDatabase()
        let dirs = [TestData(), TestData()]
        let a = try await dirs[0].service(postgres: url)
        let b = try await dirs[1].service(postgres: url)
        return (a, b, dirs)
    }

    @Test func decisionsOfBothNodesStayInOneOrder() async throws {
        let (a, b, dirs) = try await twoNodes()
        let ledgerA = try #require(a.ledger), ledgerB = try #require(b.ledger)
        #expect(await ledgerA.ownEpoch != ledgerB.ownEpoch)

        let (alice, seqA) = try await ledgerA.register(username: "alice", passwordHash: "h1")
        try await a.durable(seqA)
        // B learns of alice (and her key) when a lookup misses, and refuses her name.
        #expect(await ledgerB.credentialsCatchingUp(of: "ALICE")?.id == alice)
        await #expect(throws: APIError.self) { _ = try await ledgerB.register(username: "Alice", passwordHash: "h2") }
        let (bob, seqB) = try await ledgerB.register(username: "bob", passwordHash: "h3")
        try await b.durable(seqB)
        #expect(bob == alice + 1, "user ids come from one sequence")

        let aliceOnA = try await ledgerA.session(of: alice)
        try await a.durable(ledgerA.log.nextAssignedSeq - 1)
        // Her session began on A: B knows it once it catches up.
        #expect(await ledgerB.isLiveCatchingUp(aliceOnA))
        let chat = try await ledgerB.startChat(from: aliceOnA, with: .name("bob"))
        try await b.durable(chat.seq)

        // The same client ids sent through both nodes at once: each is stored once.
        let ids = (0..<40).map { "c\($0)" }
        async let throughA = sendAll(ledgerA, aliceOnA, ids)
        async let throughB = sendAll(ledgerB, aliceOnA, ids)
        let (onA, onB) = try await (throughA, throughB)
        #expect(onA == onB, "both nodes answer every client id with the same message")
        #expect(Set(onA).count == ids.count)

        // Both nodes hold the same history, texts opened with the key A made.
        await b.catchUpForTests()
        await a.catchUpForTests()
        let historyA = try await ledgerA.history(of: chat.conversation, for: alice, after: 0, limit: 100)
        let historyB = try await ledgerB.history(of: chat.conversation, for: bob, after: 0, limit: 100)
        guard case let .page(pageA, _) = historyA, case let .page(pageB, _) = historyB else {
            Issue.record("history not found")
            return
        }
        #expect(pageA.map(\.id) == pageB.map(\.id))
        #expect(pageB.count == ids.count)
        #expect(pageB.allSatisfy { $0.text?.hasPrefix("text ") == true })

        await a.shutdown()
        await b.shutdown()
        _ = dirs
    }

    @Test func aNodeThatLeavesClosesItsSocketsForTheOthers() async throws {
        let (a, b, dirs) = try await twoNodes()
        let ledgerA = try #require(a.ledger), ledgerB = try #require(b.ledger)
        let (alice, seq) = try await ledgerA.register(username: "alice", passwordHash: "h1")
        try await a.durable(seq)
        let epochA = await ledgerA.ownEpoch
        // A socket of A's epoch, as A's start of a socket writes it.
        _ = try await ledgerA.session(of: alice)
        let socket = try await ledgerA.recordSocketForTests(userId: alice)
        try await a.durable(socket)
        await b.catchUpForTests()
        #expect(await ledgerB.views.isConnected(alice))
        // B finds A gone (as its heartbeat check would) and ends A's epoch.
        let left = try #require(try await ledgerB.nodeLeft(epochA))
        try await b.durable(left.seq)
        #expect(await !ledgerB.views.isConnected(alice))
        #expect(try await ledgerB.nodeLeft(epochA) == nil, "a second end finds nothing to close")
        await a.shutdown()
        await b.shutdown()
        _ = dirs
    }

    @Test func aNodeWhoseBatchIsFencedOutStartsAgainFromTheDatabase() async throws {
        let url = try await PostgresTestServer.freshDatabase()
        let dir = TestData()
        let node = try await dir.service(postgres: url)
        let before = try #require(node.ledger)
        let (_, seq) = try await before.register(username: "alice", passwordHash: "h1")
        try await node.durable(seq)
        // Another writer commits behind the node's back, as one could after the database
        // dropped the node's connection (and its turn lock) without the node noticing yet.
        let intruderStore = try await PostgresLog.open(url: url)
        let intruderDir = TestData()
        _ = try await intruderStore.download(into: intruderDir.path + "/log")
        let intruder = try EventLog.open(directory: intruderDir.path + "/log",
                                         options: EventLogOptions(durability: .never, mirror: intruderStore))
        try await intruder.append(Event.serverStarted(ServerStarted(epoch: 99, shared: true)).record(timestamp: currentMicros()))
        await intruder.close()
        await intruderStore.close()
        // The node still believes it holds the turn: its next batch is refused, never acknowledged.
        await #expect(throws: (any Error).self) {
            let (_, seq) = try await before.register(username: "bob", passwordHash: "h2")
            try await node.durable(seq)
        }
        var after: Ledger?
        for _ in 0..<200 {
            if let current = node.ledger, current !== before { after = current; break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let restarted = try #require(after, "the node serves again")
        #expect(await restarted.views.presence.epoch >= 99, "it holds the other writer's event")
        #expect(await restarted.credentials(of: "bob") == nil, "the refused registration is gone")
        let (bob, again) = try await restarted.register(username: "bob", passwordHash: "h2")
        try await node.durable(again)
        #expect(bob == 2)
        await node.shutdown()
    }

    private func sendAll(_ ledger: Ledger, _ token: VerifiedToken, _ ids: [String]) async throws -> [UInt64] {
        var out: [UInt64] = []
        for id in ids {
            switch try await ledger.send(from: token, to: "bob", text: "text \(id)", clientId: id) {
            case let .stored(m), let .duplicate(m): out.append(m.id)
            case let .rejected(code, _): throw APIError.invalid("message", code)
            }
        }
        return out
    }
}

extension ChatService {
    /// Applies what other nodes stored so far.
    func catchUpForTests() async { await cluster?.catchUp() }
}

extension Ledger {
    /// Records an open socket of this node's epoch, as opening a WebSocket does.
    func recordSocketForTests(userId: UInt32) async throws -> UInt64 {
        try await awaitTurn()
        let id = nextSocketId
        nextSocketId += 1
        return try commit([.socketConnected(SocketConnected(userId: userId, socketId: id))])
    }
}
