import Foundation
import Testing
@testable import API
@testable import EventLog

/// Views know a message as soon as the Ledger decides it; the log serves it only once durable.
/// Reads listing such a message wait for it instead of failing (a `sync` right after a send,
/// another user's history or conversation list under load).
@Suite struct LedgerReadTests {
    @Test func readsWaitForAMessageThatIsDecidedButNotYetDurable() async throws {
        let data = TestData()
        let service = try await data.service()
        let ledger = try #require(service.ledger)
        let (lee, _) = try await ledger.register(username: "lee", passwordHash: "x")
        let (max, _) = try await ledger.register(username: "max", passwordHash: "x")
        let session = try await ledger.session(of: lee)
        let chat = try await ledger.startChat(from: session, with: .name("max"))
        try await ledger.log.waitUntilDurable(try #require(chat.seq))

        ledger.log.withCond { ledger.log.injectWriteDelay = 0.3 }  // a slow disk
        guard case let .stored(message) = try await ledger.send(from: session, to: "max", text: "hello", clientId: nil) else {
            Issue.record("not stored")
            return
        }
        #expect(ledger.log.durableSeq < message.id, "decided, not yet durable")
        guard case let .page(page, _) = try await ledger.history(of: chat.conversation, for: max, after: 0, limit: 10) else {
            Issue.record("no history page")
            return
        }
        #expect(page.map { $0.text } == ["hello"])
        ledger.log.withCond { ledger.log.injectWriteDelay = 0 }
        let listed = try await ledger.conversations(of: max)
        #expect(listed.count == 1 && listed[0].contains("\"message\":\"hello\""))
        #expect(try await ledger.messagesOfUser(max, after: 0, limit: 10).map(\.id) == [message.id])
        await service.shutdown()
    }
}
