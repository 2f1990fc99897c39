import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import API

@Suite struct RouteTests {
    @Test func registerLoginRefreshLogout() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.router) { client in
            let r = try await client.post("/api/register", ["username": "alice", "password": "pw-long-enough"])
            #expect(r.status == .created)
            #expect(object(r)["id"] as? Int == 1)
            let dup = try await client.post("/api/register/", ["username": "ALICE", "password": "pw-long-enough"])
            #expect(dup.status == .conflict && object(dup)["code"] as? String == "username_taken")
            let bad = try await client.post("/api/register/", ["username": "bad name", "password": "123"])
            let fields = object(bad)["fields"] as? [String: [String]]
            #expect(bad.status == .badRequest && fields?["username"] != nil && fields?["password"] != nil)

            let wrong = try await client.post("/api/login/", ["username": "alice", "password": "nope-nope-nope"])
            let ghost = try await client.post("/api/login/", ["username": "ghost", "password": "nope-nope-nope"])
            #expect(wrong.status == .unauthorized && ghost.status == .unauthorized)
            #expect(object(wrong)["detail"] as? String == object(ghost)["detail"] as? String)

            let login = object(try await client.post("/api/login/", ["username": "alice", "password": "pw-long-enough"]))
            let access = try #require(login["access"] as? String)
            let refresh = try #require(login["refresh"] as? String)
            #expect(try await client.get("/api/conversations/", token: access).status == .ok)
            #expect(try await client.get("/api/conversations/", token: refresh).status == .unauthorized)

            let rotated = object(try await client.post("/api/token/refresh/", ["refresh": refresh]))
            let newRefresh = try #require(rotated["refresh"] as? String)
            // Reuse of the retired token ends the session: even the new tokens stop working.
            #expect(try await client.post("/api/token/refresh/", ["refresh": refresh]).status == .unauthorized)
            #expect(try await client.post("/api/token/refresh/", ["refresh": newRefresh]).status == .unauthorized)
            #expect(try await client.get("/api/conversations/", token: access).status == .unauthorized)

            let again = object(try await client.post("/api/login/", ["username": "alice", "password": "pw-long-enough"]))
            let a2 = try #require(again["access"] as? String)
            let r2 = try #require(again["refresh"] as? String)
            let out = try await client.post("/api/logout/", ["refresh": r2], token: a2)
            #expect(out.status == .ok)
            #expect(try await client.get("/api/conversations/", token: a2).status == .unauthorized)

            // One user registered (the duplicate and the invalid one were refused).
            let metrics = try await client.execute(uri: "/metrics", method: .get, headers: [:])
            #expect(String(buffer: metrics.body).split(separator: "\n").contains("chat_users 1"))
        }
        await service.shutdown()
    }

    @Test func failedLoginsAreThrottledPerUsername() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.router) { client in
            _ = try await client.post("/api/register/", ["username": "bob", "password": "pw-long-enough"])
            for _ in 0..<3 {
                #expect(try await client.post("/api/login/", ["username": "bob", "password": "wrong-password"]).status == .unauthorized)
            }
            let limited = try await client.post("/api/login/", ["username": "bob", "password": "pw-long-enough"])
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter] != nil)
        }
        await service.shutdown()
    }

    @Test func chatStartSendHistoryAndConversations() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.router) { client in
            let a = try await client.account("ann")
            let b = try await client.account("ben")
            let notYet = try await client.post("/api/chat/send/", ["message": "hi", "receiver": "ben"], token: a.access)
            #expect(notYet.status == .conflict && object(notYet)["code"] as? String == "chat_not_started")
            let start = try await client.post("/api/chat/start/", ["receiver_id": "ben"], token: a.access)
            #expect(start.status == .created)
            let cid = try #require(object(start)["conversation_id"] as? String)
            let back = try await client.post("/api/chat/start/", ["receiver_id": a.id], token: b.access)
            #expect(back.status == .ok && object(back)["conversation_id"] as? String == cid)

            let m1 = try await client.post("/api/chat/send/", ["message": "héllo 👋", "receiver": "ben", "client_id": "k1"], token: a.access)
            #expect(m1.status == .created)
            let again = try await client.post("/api/chat/send/", ["message": "héllo 👋", "receiver": "ben", "client_id": "k1"], token: a.access)
            #expect(again.status == .ok && object(again)["id"] as? Int == object(m1)["id"] as? Int)
            let long = try await client.post("/api/chat/send/", ["message": String(repeating: "👋", count: 4097), "receiver": "ben"], token: a.access)
            #expect(object(long)["code"] as? String == "message_too_long")
            _ = try await client.post("/api/chat/send/", ["message": "second", "receiver": "ann"], token: b.access)

            let history = object(try await client.get("/api/chat/\(cid)/messages/?limit=1", token: b.access))
            let page = try #require(history["results"] as? [[String: Any]])
            #expect(page.count == 1 && page[0]["message"] as? String == "héllo 👋" && page[0]["sender"] as? String == "ann")
            #expect(history["next_after"] as? Int == object(m1)["id"] as? Int)

            let c = try await client.account("cat")
            #expect(try await client.get("/api/chat/\(cid)/messages/", token: c.access).status == .forbidden)
            let convs = try JSONSerialization.jsonObject(with: Data(buffer: try await client.get("/api/conversations/", token: a.access).body)) as? [[String: Any]]
            #expect(convs?.count == 1 && convs?[0]["message_count"] as? Int == 2)
        }
        await service.shutdown()
    }

    @Test func wrongMethodsUnknownPathsAndContentTypes() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.router) { client in
            let wrong = try await client.execute(uri: "/api/register/", method: .get)
            #expect(wrong.status == .methodNotAllowed)
            #expect(wrong.headers[.allow] == "POST", "a 405 names what the path answers (RFC 9110)")
            let both = try await client.execute(uri: "/api/chat/send/", method: .delete)
            #expect(both.status == .methodNotAllowed)
            #expect(both.headers[.allow] == "POST, GET")
            #expect(try await client.execute(uri: "/api/nothing/", method: .get).status == .notFound)
            let xml = try await client.execute(uri: "/api/register/", method: .post, headers: [.contentType: "application/xml"], body: ByteBuffer(string: "<a/>"))
            #expect(xml.status == .unsupportedMediaType)
            let big = try await client.execute(uri: "/api/register/", method: .post, headers: [.contentType: "application/json"],
                                               body: ByteBuffer(string: "{\"username\":\"" + String(repeating: "x", count: 70_000) + "\"}"))
            #expect(big.status == .contentTooLarge)
            let deep = try await client.execute(uri: "/api/register/", method: .post, headers: [.contentType: "application/json"],
                                                body: ByteBuffer(string: String(repeating: "[", count: 5000)))
            #expect(deep.status == .badRequest)
            let health = object(try await client.execute(uri: "/healthz", method: .get))
            #expect(health["status"] as? String == "ok")
        }
        await service.shutdown()
    }
}
