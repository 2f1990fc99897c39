import Foundation
import Hummingbird
import HummingbirdTesting
import Projections
import Testing
@testable import API

@Suite struct LedgerRestartTests {
    @Test func stateIsRebuiltFromTheLogAfterARestart() async throws {
        let data = TestData()
        var service = try await data.service()
        let refresh = try await service.application().test(.router) { client in
            let a = try await client.account("dora")
            _ = try await client.account("eli")
            _ = try await client.post("/api/chat/start/", ["receiver_id": "eli"], token: a.access)
            for i in 0..<5 {
                _ = try await client.post("/api/chat/send/", ["message": "m\(i)", "receiver": "eli", "client_id": "c\(i)"], token: a.access)
            }
            return a.refresh
        }
        let ledger = try #require(service.ledger)
        let digest = await ledger.views.digest()
        await service.shutdown()

        service = try await data.service()
        let reopened = try #require(service.ledger)
        var replayed = await reopened.views.digest()
        // The new epoch's ServerStarted is the only difference.
        replayed["presence"] = digest["presence"]
        replayed["position"] = digest["position"]
        #expect(replayed == digest)
        try await service.application().test(.router) { client in
            let rotated = try await client.post("/api/token/refresh/", ["refresh": refresh])
            #expect(rotated.status == .ok)
            let again = try await client.post("/api/login/", ["username": "dora", "password": "pw-long-enough"])
            let access = try #require(object(again)["access"] as? String)
            let dup = try await client.post("/api/chat/send/", ["message": "m0", "receiver": "eli", "client_id": "c0"], token: access)
            #expect(dup.status == .ok)
        }
        await service.shutdown()
    }

    @Test func ledgerRejectsWithoutWriting() async throws {
        let data = TestData()
        let service = try await data.service()
        let ledger = try #require(service.ledger)
        let before = ledger.log.durableSeq
        let (id, seq) = try await ledger.register(username: "fay", passwordHash: "x")
        try await ledger.log.waitUntilDurable(seq)
        #expect(id == 1)
        await #expect(throws: APIError.self) { try await ledger.register(username: "FAY", passwordHash: "y") }
        let session = try await ledger.session(of: 1)
        let outcome = try await ledger.send(from: session, to: "nobody", text: "hi", clientId: nil)
        guard case .rejected(let code, _) = outcome else { Issue.record("expected a rejection"); return }
        #expect(code == "unknown_receiver")
        #expect(ledger.log.nextAssignedSeq == before + 3, "the registration and the login, nothing for the rejected send")
        await service.shutdown()
    }

    /// A retry sent before its original is durable must get the original's id, not a second copy.
    @Test func aClientIdRetriedBeforeItsOriginalIsDurableIsStoredOnce() async throws {
        let data = TestData()
        let service = try await data.service()
        let ledger = try #require(service.ledger)
        let (a, _) = try await ledger.register(username: "gil", passwordHash: "x")
        let (b, _) = try await ledger.register(username: "hana", passwordHash: "x")
        let session = try await ledger.session(of: a)
        _ = try await ledger.startChat(from: session, with: .id(b))
        for round in 0..<20 {
            let first = try await ledger.send(from: session, to: "hana", text: "m\(round)", clientId: "c\(round)")
            let retry = try await ledger.send(from: session, to: "hana", text: "m\(round)", clientId: "c\(round)")
            guard case let .stored(original) = first, case let .duplicate(again) = retry else {
                Issue.record("round \(round): \(first) then \(retry)")
                continue
            }
            #expect(again.id == original.id)
        }
        try await ledger.log.waitUntilDurable(ledger.log.nextAssignedSeq - 1)
        #expect(await ledger.views.conversations.messageCount == 20)
        await service.shutdown()
    }
}
