import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import Testing
@testable import API

/// A session that ends closes its sockets (4401) and they get nothing decided after the end;
/// other sessions of the user are untouched; a socket lives as long as its session, not its
/// access token.
@Suite struct SessionEndTests {
    /// Opens a socket with `token`, pings, and records every text frame and, once it ends, the
    /// close frame (`ended`).
    static func listen(_ client: some TestClientProtocol, _ token: String, into frames: Received,
                       until stop: String? = nil) -> SocketEnd {
        let end = SocketEnd()
        Task {
            let close = try? await client.ws("/api/chat/send/?token=\(token)") { inbound, outbound, _ in
                try await outbound.write(.text("{\"type\":\"ping\"}"))
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case let .text(text) = message else { continue }
                    await frames.add(text)
                    if let stop, text.contains(stop) { break }
                }
            }
            await end.set(close)
        }
        return end
    }

    @Test func logoutClosesThatSessionsSocketAtOnceAndNothingLaterReachesIt() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.live) { client in
            // Whatever a test leaves open closes (1001), so a failure cannot hang the teardown.
            defer { service.beginShutdown() }
            let ana = try await client.account("ana")
            let other = object(try await client.post("/api/login/", ["username": "ana", "password": "pw-long-enough"]))
            let ben = try await client.account("ben")
            _ = try await client.post("/api/chat/start/", ["receiver_id": "ana"], token: ben.access)
            let first = Received(), second = Received()
            let firstSocket = Self.listen(client, ana.access, into: first)
            _ = Self.listen(client, try #require(other["access"] as? String), into: second, until: "after logout")
            try await first.waitFor("pong")
            try await second.waitFor("pong")

            let started = Date()
            let out = try await client.post("/api/logout/", ["refresh": ana.refresh], token: ana.access)
            #expect(out.status == .ok)
            _ = try await client.post("/api/chat/send/", ["receiver": "ana", "message": "after logout"], token: ben.access)
            let close = await firstSocket.closeFrame()
            #expect(close?.closeCode == .unknown(4401))
            #expect(close?.reason == "session ended")
            #expect(Date().timeIntervalSince(started) < 1.0, "closed within a second of the logout")
            #expect(await first.all.allSatisfy { !$0.contains("after logout") }, "nothing decided after the end")
            try await second.waitFor("after logout")  // the other session still receives
        }
        await service.shutdown()
    }

    @Test func reuseOfARetiredRefreshTokenClosesTheSessionsSocket() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.live) { client in
            // Whatever a test leaves open closes (1001), so a failure cannot hang the teardown.
            defer { service.beginShutdown() }
            let ana = try await client.account("ana")
            let frames = Received()
            let socket = Self.listen(client, ana.access, into: frames)
            try await frames.waitFor("pong")
            #expect(try await client.post("/api/token/refresh/", ["refresh": ana.refresh]).status == .ok)
            #expect(try await client.post("/api/token/refresh/", ["refresh": ana.refresh]).status == .unauthorized)
            #expect(await socket.closeFrame()?.closeCode == .unknown(4401))
        }
        await service.shutdown()
    }

    @Test func anExpiringSessionClosesItsSocketOnTimeAndFriendsSeeItGoOffline() async throws {
        let data = TestData()
        let service = try await data.service(refreshLifetime: 2)
        try await service.application().test(.live) { client in
            // Whatever a test leaves open closes (1001), so a failure cannot hang the teardown.
            defer { service.beginShutdown() }
            let beforeLogin = Date()  // ana's session expires 2 s after her login, so no earlier than this + 2 s
            let ana = try await client.account("ana")
            let ben = try await client.account("ben")
            _ = try await client.post("/api/chat/start/", ["receiver_id": "ana"], token: ben.access)
            let anaFrames = Received(), benFrames = Received()
            let anaSocket = Self.listen(client, ana.access, into: anaFrames)
            _ = Self.listen(client, ben.access, into: benFrames, until: "\"online\":false")
            try await anaFrames.waitFor("pong")
            let close = await anaSocket.closeFrame()
            let after = Date().timeIntervalSince(beforeLogin)
            #expect(close?.closeCode == .unknown(4401))
            // Closed by the timer at the 2 s expiry: never before it, and with no request to
            // trigger it (the bound above it leaves room for a loaded CI machine).
            #expect(after >= 2 && after < 6, "closed at the 2 s expiry (took \(after) s from before the login)")
            try await benFrames.waitFor(#""user":"ana","online":false"#)
        }
        await service.shutdown()
    }

    @Test func aSocketOutlivesItsAccessTokenWhileTheSessionIsOpen() async throws {
        let data = TestData()
        let service = try await data.service(accessLifetime: 3)
        try await service.application().test(.live) { client in
            // Whatever a test leaves open closes (1001), so a failure cannot hang the teardown.
            defer { service.beginShutdown() }
            let ana = try await client.account("ana")
            let ben = try await client.account("ben")
            _ = try await client.post("/api/chat/start/", ["receiver_id": "ana"], token: ben.access)
            let frames = Received()
            _ = Self.listen(client, ana.access, into: frames, until: "still here")
            try await frames.waitFor("pong")
            // Until the access token that opened the socket is refused everywhere else.
            let deadline = Date().addingTimeInterval(15)
            while try await client.get("/api/conversations/", token: ana.access).status == .ok, Date() < deadline {
                try await Task.sleep(nanoseconds: 200_000_000)
            }
            #expect(try await client.get("/api/conversations/", token: ana.access).status == .unauthorized)
            let fresh = object(try await client.post("/api/login/", ["username": "ben", "password": "pw-long-enough"]))
            _ = try await client.post("/api/chat/send/", ["receiver": "ana", "message": "still here"],
                                      token: try #require(fresh["access"] as? String))
            try await frames.waitFor("still here")
        }
        await service.shutdown()
    }
}

/// How a test socket ended: its close frame, once it has one.
actor SocketEnd {
    private var frame: WebSocketCloseFrame??

    func set(_ close: WebSocketCloseFrame?) { frame = .some(close) }

    /// The close frame, or nil (recorded as an issue) if the socket is still open after `seconds`.
    func closeFrame(within seconds: Double = 5) async -> WebSocketCloseFrame? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let frame { return frame }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        Issue.record("the socket was still open after \(seconds) s")
        return nil
    }
}
