import Foundation
import Projections
import Testing
@testable import API
@testable import EventLog

/// The idempotency index keeps 36 bits of a client id's key, so a lookup can return a false
/// candidate. Waiting for such a candidate to be durable suspends the Ledger, and a twin of the
/// same send may be decided meanwhile: it must still be stored once.
@Suite struct ClientIdRaceTests {
    /// Two client ids of user 1 whose keys agree in the bits the index keeps (found by search).
    static let collidingIds = ("k20889", "k5184124")

    @Test func twinSendsWaitingOnAFalseCandidateAreStoredOnce() async throws {
        let (first, twin) = Self.collidingIds
        #expect(clientIdKey(sender: 1, clientId: first) >> 28 == clientIdKey(sender: 1, clientId: twin) >> 28)
        #expect(clientIdKey(sender: 1, clientId: first) != clientIdKey(sender: 1, clientId: twin))
        let data = TestData()
        let service = try await data.service()
        let ledger = try #require(service.ledger)
        let (ivo, _) = try await ledger.register(username: "ivo", passwordHash: "x")
        _ = try await ledger.register(username: "jun", passwordHash: "x")
        try #require(ivo == 1, "the colliding ids were found for user 1")
        let session = try await ledger.session(of: ivo)
        let chat = try await ledger.startChat(from: session, with: .name("jun"))
        try await ledger.log.waitUntilDurable(try #require(chat.seq))

        ledger.log.withCond { ledger.log.injectWriteDelay = 0.3 }  // a slow disk
        guard case .stored = try await ledger.send(from: session, to: "jun", text: "first", clientId: first) else {
            Issue.record("the first message was not stored")
            return
        }
        // Both sends find the first message as a candidate, not yet durable, and wait for it.
        async let a = ledger.send(from: session, to: "jun", text: "twin", clientId: twin)
        async let b = ledger.send(from: session, to: "jun", text: "twin", clientId: twin)
        let outcomes = try await [a, b]
        ledger.log.withCond { ledger.log.injectWriteDelay = 0 }

        var stored: [UInt64] = []
        var repeated: [UInt64] = []
        for outcome in outcomes {
            switch outcome {
            case let .stored(m): stored.append(m.id)
            case let .duplicate(m): repeated.append(m.id)
            case let .rejected(code, _): Issue.record("rejected: \(code)")
            }
        }
        #expect(stored.count == 1)
        #expect(repeated == stored)
        try await ledger.log.waitUntilDurable(ledger.log.nextAssignedSeq - 1)
        #expect(await ledger.views.conversations.messageCount == 2)
        await service.shutdown()
    }
}
