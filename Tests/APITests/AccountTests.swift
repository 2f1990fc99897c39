import EventLog
import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import Projections
import Testing
@testable import API

/// Account deletion (erasure by crypto-shredding), its crash windows, and the data export.
@Suite struct AccountTests {
    func healthPosition(_ client: some TestClientProtocol) async throws -> Int {
        object(try await client.execute(uri: "/healthz", method: .get))["log_position"] as? Int ?? -1
    }

    func history(_ client: some TestClientProtocol, _ cid: String, _ token: String) async throws -> [[String: Any]] {
        object(try await client.get("/api/chat/\(cid)/messages/?limit=500", token: token))["results"] as? [[String: Any]] ?? []
    }

    @Test func deletionErasesForEveryReaderAndEndsEverySession() async throws {
        let data = TestData()
        let service = try await data.service()
        let cid = publicConversationId(1)
        try await service.application().test(.live) { client in
            defer { service.beginShutdown() }
            let ana = try await client.account("Ana.Canary")
            let ben = try await client.account("ben")
            let start = object(try await client.post("/api/chat/start/", ["receiver_id": "Ana.Canary"], token: ben.access))
            #expect(start["conversation_id"] as? String == cid)
            _ = try await client.post("/api/chat/send/", ["receiver": "ben", "message": "from ana"], token: ana.access)
            _ = try await client.post("/api/chat/send/", ["receiver": "Ana.Canary", "message": "from ben"], token: ben.access)
            let anaFrames = Received(), benFrames = Received()
            let anaSocket = SessionEndTests.listen(client, ana.access, into: anaFrames)
            _ = SessionEndTests.listen(client, ben.access, into: benFrames)
            try await anaFrames.waitFor("pong")
            try await benFrames.waitFor("pong")

            let before = try await healthPosition(client)
            let wrong = try await client.post("/api/account/delete/", ["password": "not-the-password"], token: ana.access)
            #expect(wrong.status == .forbidden && object(wrong)["code"] as? String == "wrong_password")
            let missing = try await client.post("/api/account/delete/", [:], token: ana.access)
            #expect(missing.status == .badRequest && (object(missing)["fields"] as? [String: Any])?["password"] != nil)
            #expect(try await healthPosition(client) == before, "a refused deletion appends nothing")

            let deleted = try await client.post("/api/account/delete/", ["password": "pw-long-enough"], token: ana.access)
            #expect(deleted.status == .ok && object(deleted)["detail"] as? String == "Account deleted.")
            #expect(await anaSocket.closeFrame()?.closeCode == .unknown(4401))
            try await benFrames.waitFor(#"{"type":"presence","user":"[deleted]","online":false,"connected":false}"#)
            #expect(try await client.get("/api/conversations/", token: ana.access).status == .unauthorized)
            let login = try await client.post("/api/login/", ["username": "ana.canary", "password": "pw-long-enough"])
            #expect(login.status == .unauthorized && object(login)["code"] as? String == "no_active_account")
            #expect(try await client.post("/api/register/", ["username": "ANA.CANARY", "password": "pw-long-enough"]).status == .conflict)
            #expect(try await client.post("/api/chat/start/", ["receiver_id": "Ana.Canary"], token: ben.access).status == .notFound)
            #expect(try await client.post("/api/chat/start/", ["receiver_id": 1], token: ben.access).status == .notFound)
            let send = try await client.post("/api/chat/send/", ["receiver": "Ana.Canary", "message": "x"], token: ben.access)
            #expect(send.status == .notFound && object(send)["code"] as? String == "unknown_receiver")

            let messages = try await history(client, cid, ben.access)
            #expect(messages.count == 2)
            #expect(messages[0]["sender"] as? String == "[deleted]" && messages[0]["message"] is NSNull && messages[0]["erased"] as? Bool == true)
            #expect(messages[1]["message"] as? String == "from ben" && messages[1]["receiver"] as? String == "[deleted]"
                    && messages[1]["erased"] as? Bool == false)
            let export = try await client.get("/api/account/export/", token: ben.access)
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(buffer: export.body)) as? [String: Any])
            let conversation = try #require((doc["conversations"] as? [[String: Any]])?.first)
            #expect(conversation["with"] as? String == "[deleted]")
            let suggestions = object(try await client.get("/api/suggested-friends/2", token: ben.access))
            #expect((suggestions["results"] as? [[String: Any]])?.isEmpty == true, "a deleted user is never suggested")
        }
        let keys = try #require(service.ledger?.keys)
        #expect(!keys.hasKey(1) && keys.hasKey(2))
        #expect(KeyStore.userIds(dataDirectory: data.path) == [2], "the key left the key store's files")
        await service.shutdown()

        // After a restart: still erased, nothing to finish.
        let again = try await data.service()
        try await again.application().test(.live) { client in
            let ben = object(try await client.post("/api/login/", ["username": "ben", "password": "pw-long-enough"]))
            let messages = try await history(client, cid, try #require(ben["access"] as? String))
            #expect(messages.map { $0["erased"] as? Bool } == [true, false])
            #expect(try await client.post("/api/login/", ["username": "Ana.Canary", "password": "pw-long-enough"]).status == .unauthorized)
        }
        await again.shutdown()
    }

    /// A crash after the erasure is durable but before its key is destroyed: the next start
    /// destroys the key before serving, so the outcome is "fully erased", never half.
    @Test func aCrashBetweenTheErasureAndTheKeysDestructionIsFinishedAtTheNextStart() async throws {
        let data = TestData()
        let service = try await data.service()
        let ledger = try #require(service.ledger)
        let (ana, _) = try await ledger.register(username: "ana", passwordHash: "x")
        let (ben, _) = try await ledger.register(username: "ben", passwordHash: "x")
        let session = try await ledger.session(of: ana)
        _ = try await ledger.startChat(from: session, with: .id(ben))
        _ = try await ledger.send(from: session, to: "ben", text: "soon gone", clientId: nil)
        let erased = try #require(try await ledger.erase(session))
        try await ledger.log.waitUntilDurable(erased.seq)
        // The process dies here: the key is out of memory but still in the key store's file.
        #expect(KeyStore.userIds(dataDirectory: data.path) == [ana, ben])
        await service.shutdown()

        let restarted = try await data.service()
        #expect(KeyStore.userIds(dataDirectory: data.path) == [ben])
        let again = try #require(restarted.ledger)
        let page = try await again.messagesOfUser(ben, after: 0, limit: 10)
        #expect(page.map(\.erased) == [true] && page.map(\.sender) == ["[deleted]"])
        await restarted.shutdown()
    }

    @Test func aStartRefusesAKeyStoreThatLostActiveUsersKeys() async throws {
        let data = TestData()
        let service = try await data.service()
        let ledger = try #require(service.ledger)
        _ = try await ledger.register(username: "ana", passwordHash: "x")
        await service.shutdown()
        try FileManager.default.removeItem(atPath: data.path + "/keys/" + "users-000000.keys")
        let restarted = try await data.service(start: false)
        let error = await #expect(throws: StartError.self) { try await restarted.start() }
        #expect(error?.description.contains("no key for 1 active users") == true)
    }

    @Test func aLogFromBeforeEncryptionIsRefusedNamingTheMigration() async throws {
        let data = TestData()
        let log = try EventLog.open(directory: data.path + "/log")
        try await log.append([
            Event.userRegistered(UserRegistered(userId: 1, username: "old", passwordHash: "pbkdf2_sha256$1$s$h")).record(timestamp: 1),
            Event.serverStarted(ServerStarted(epoch: 1)).record(timestamp: 2),
        ])
        await log.close()
        let service = try await data.service(start: false)
        let error = await #expect(throws: StartError.self) { try await service.start() }
        #expect(error?.description.contains("chat-es migrate --from \(data.path)") == true)
        #expect(!FileManager.default.fileExists(atPath: data.path + "/keys"), "nothing is created in a directory it refuses")
    }

    @Test func theExportStreamsEveryMessageAndSession() async throws {
        let data = TestData()
        let service = try await data.service()
        let ledger = try #require(service.ledger)
        try await service.application().test(.live) { client in
            let ana = try await client.account("ana")
            _ = try await client.account("bén")
            let out = object(try await client.post("/api/login/", ["username": "ana", "password": "pw-long-enough"]))
            _ = try await client.post("/api/logout/", ["refresh": try #require(out["refresh"] as? String)],
                                      token: try #require(out["access"] as? String))
            let session = try await ledger.session(of: 1)
            _ = try await ledger.startChat(from: session, with: .id(2))
            for i in 0..<1_100 { _ = try await ledger.send(from: session, to: "bén", text: "m\(i)", clientId: nil) }
            let response = try await client.get("/api/account/export/", token: ana.access)
            #expect(response.status == .ok)
            #expect(response.headers[.contentDisposition] == #"attachment; filename="chat-es-export-ana.json"; filename*=UTF-8''chat-es-export-ana.json"#)
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
            #expect((doc["user"] as? [String: Any])?["username"] as? String == "ana")
            let sessions = try #require(doc["sessions"] as? [[String: Any]])
            #expect(sessions.count == 3)
            #expect(sessions.compactMap { $0["how"] as? String } == ["logout"])
            let conversation = try #require((doc["conversations"] as? [[String: Any]])?.first)
            #expect(conversation["with"] as? String == "bén")
            let texts = (conversation["messages"] as? [[String: Any]])?.compactMap { $0["message"] as? String }
            #expect(texts == (0..<1_100).map { "m\($0)" }, "every message, oldest first, across pages")
        }
        #expect(RouteHandlers.attachment(filename: "chat-es-export-bén.json")
                == #"attachment; filename="chat-es-export-b_n.json"; filename*=UTF-8''chat-es-export-b%C3%A9n.json"#)
        await service.shutdown()
    }

    @Test func secretsShorterThan32BytesAreRefusedNotReplaced() throws {
        let data = TestData()
        #expect(throws: SecretMaterialError.self) {
            try loadSecret(dataDirectory: data.path, environment: ["CHAT_ES_SECRET": "ci-acceptance-secret"])
        }
        _ = FileManager.default.createFile(atPath: data.path + "/secret", contents: Data("short".utf8))
        #expect(throws: SecretMaterialError.self) { try loadSecret(dataDirectory: data.path, environment: [:]) }
        #expect(FileManager.default.contents(atPath: data.path + "/secret") == Data("short".utf8))
        try FileManager.default.removeItem(atPath: data.path + "/secret")
        #expect(try loadSecret(dataDirectory: data.path, environment: [:]).count == 32)
    }
}
