import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import Testing
@testable import API

@Suite struct WebSocketTests {
    @Test func sendAckAndDeliveryOverRealSockets() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.live) { client in
            let a = try await client.account("gus")
            let b = try await client.account("hal")
            _ = try await client.post("/api/chat/start/", ["receiver_id": "hal"], token: a.access)
            let received = Received()
            let listener = Task {
                try await client.ws("/api/chat/send/?token=\(b.access)") { inbound, outbound, _ in
                    try await outbound.write(.text("{\"type\":\"ping\"}"))
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case let .text(text) = message else { continue }
                        await received.add(text)
                        if text.contains("\"type\":\"message\"") { break }
                    }
                }
            }
            try await received.waitFor("pong")
            let sent = Received()
            try await client.ws("/api/chat/send/?token=\(a.access)") { inbound, outbound, _ in
                try await outbound.write(.text("not json"))
                try await outbound.write(.text("{\"message\": \"hey\", \"receiver\": \"hal\", \"client_id\": \"x1\"}"))
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case let .text(text) = message else { continue }
                    await sent.add(text)
                    if text.contains("message.ack") { break }
                }
            }
            let frames = await sent.all
            #expect(frames.first?.contains("invalid_json") == true)
            #expect(frames.last?.contains("\"client_id\":\"x1\"") == true)
            try await received.waitFor("\"message\":\"hey\"")
            _ = try await listener.value
        }
        await service.shutdown()
    }

    @Test func shutdownClosesOpenSocketsWith1001() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.live) { client in
            let a = try await client.account("ivy")
            let close = try await client.ws("/api/chat/send/?token=\(a.access)") { inbound, outbound, _ in
                try await outbound.write(.text("{\"type\":\"ping\"}"))
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    // Once the socket is open and answering, the server begins its graceful shutdown.
                    if case let .text(text) = message, text.contains("pong") { service.beginShutdown() }
                }
            }
            #expect(close?.closeCode == .goingAway)
            #expect(close?.reason == "server shutting down")
        }
        await service.shutdown()
    }

    /// Sends read back to back are decided in order before a `sync` that follows them, and
    /// before an oversized frame ends the socket: none is lost to the per-socket send queue.
    @Test func pipelinedSendsAreDecidedBeforeASyncAndBeforeAnOversizedFrameEndsTheSocket() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.live) { client in
            let a = try await client.account("nia")
            _ = try await client.account("oto")
            let start = try await client.post("/api/chat/start/", ["receiver_id": "oto"], token: a.access)
            let cid = try #require(object(start)["conversation_id"] as? String)
            let frames = Received()
            _ = try await client.ws("/api/chat/send/?token=\(a.access)") { inbound, outbound, _ in
                for i in 0..<40 {
                    try await outbound.write(.text(#"{"message":"m\#(i)","receiver":"oto","client_id":"p\#(i)"}"#))
                }
                try await outbound.write(.text(#"{"type":"sync","after":0}"#))
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case let .text(text) = message else { continue }
                    await frames.add(text)
                    if text.contains("sync.done") { break }
                }
            }
            let synced = await frames.all.filter { $0.contains(#""type":"message""#) }.compactMap { text in
                (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["message"] as? String
            }
            #expect(synced == (0..<40).map { "m\($0)" }, "the sync replays every send read before it, in order")

            let close = try await client.ws("/api/chat/send/?token=\(a.access)") { inbound, outbound, _ in
                for i in 40..<50 {
                    try await outbound.write(.text(#"{"message":"m\#(i)","receiver":"oto","client_id":"p\#(i)"}"#))
                }
                try await outbound.write(.text(String(repeating: "x", count: 70_000)))
                for try await _ in inbound.messages(maxSize: 1 << 20) {}
            }
            #expect(close?.closeCode == .messageTooLarge)
            let history = object(try await client.get("/api/chat/\(cid)/messages/?limit=100", token: a.access))
            let texts = try #require(history["results"] as? [[String: Any]]).compactMap { $0["message"] as? String }
            #expect(texts == (0..<50).map { "m\($0)" }, "the sends before the oversized frame are stored")
        }
        await service.shutdown()
    }

    @Test func aBadTokenIsClosedWith4401() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.live) { client in
            let close = try await client.ws("/api/chat/send/?token=garbage") { inbound, _, _ in
                for try await _ in inbound {}
            }
            #expect(close?.closeCode == .unknown(4401))
        }
        await service.shutdown()
    }
}

/// Frames a listener socket received, awaited by text.
actor Received {
    private var frames: [String] = []

    func add(_ frame: String) { frames.append(frame) }

    var all: [String] { frames }

    func waitFor(_ fragment: String, timeout: Double = 10) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if frames.contains(where: { $0.contains(fragment) }) { return }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        Issue.record("no frame containing \(fragment) within \(timeout) s; got \(frames)")
    }
}
