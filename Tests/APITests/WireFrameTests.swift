import Foundation
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Projections
import Testing
@testable import API

/// Frames encoded once as wire bytes, and the per-socket send queue of the hot path.
@Suite struct WireFrameTests {
    /// Decodes `bytes` with NIO's own frame decoder, as a client would.
    static func decoded(_ frame: WireFrame) throws -> WebSocketFrame {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
        try channel.writeInbound(frame.bytes)
        return try #require(try channel.readInbound(as: WebSocketFrame.self))
    }

    @Test(arguments: [0, 125, 126, 65_535, 65_536])
    func headersMatchWhatAClientDecodes(length: Int) throws {
        let text = String(repeating: "é", count: length / 2) + String(repeating: "x", count: length % 2)
        let frame = WireFrame(text)
        let decoded = try Self.decoded(frame)
        #expect(decoded.fin && decoded.opcode == .text && decoded.maskKey == nil)
        #expect(String(buffer: decoded.data) == text)
        #expect(frame.text == text)
    }

    @Test(arguments: [
        ("plain", "c1" as String?),
        ("quote \" backslash \\ newline \n tab \t nul \u{0} emoji 😀 and é", "id \"x\""),
        ("no client id", nil),
    ])
    func messageRenderingsAgreeAndKeepTheirBytes(text: String, clientId: String?) throws {
        let message = StoredMessage(id: 42_000_000_001, conversation: 7, sender: "ann\"e", receiver: "bö",
                                    text: text, timestamp: 1_767_225_600_123_456, clientId: clientId)
        let frames = message.wireFrames()
        #expect(frames.ack.text == message.ackFrame)
        #expect(frames.message.text == message.fields(type: "message"))
        #expect(message.ackWireFrame.text == message.ackFrame)
        #expect(message.messageWireFrame.text == message.fields(type: "message"))
        // The exact bytes clients have always been sent.
        let conversation = jsonQuoted(publicConversationId(7))
        let time = jsonQuoted(formatTimestamp(1_767_225_600_123_456))
        let client = clientId.map(jsonQuoted) ?? "null"
        #expect(message.ackFrame == #"{"type":"message.ack","id":42000000001,"conversation_id":\#(conversation),"client_id":\#(client),"timestamp":\#(time)}"#)
        let object = #""id":42000000001,"conversation_id":\#(conversation),"sender":\#(jsonQuoted("ann\"e")),"receiver":"bö","message":\#(jsonQuoted(text)),"erased":false,"timestamp":\#(time)}"#
        #expect(message.json == "{" + object)
        #expect(message.fields(type: "message") == "{\"type\":\"message\"," + object)
        // And both are the JSON a client expects.
        let ack = try #require(JSONSerialization.jsonObject(with: Data(frames.ack.text.utf8)) as? [String: Any])
        #expect(ack["client_id"] as? String == clientId)
        let delivery = try #require(JSONSerialization.jsonObject(with: Data(frames.message.text.utf8)) as? [String: Any])
        #expect(delivery["message"] as? String == text)
        #expect(delivery["erased"] as? Bool == false)
        // A deleted sender's message keeps its id and time, and says it is erased.
        var erased = message
        erased.text = nil
        let gone = try #require(JSONSerialization.jsonObject(with: Data(erased.json.utf8)) as? [String: Any])
        #expect(gone["message"] is NSNull && gone["erased"] as? Bool == true && gone["id"] as? Int == 42_000_000_001)
    }

    @Test func theSendQueueKeepsOrderBatchesAndHoldsAFullReader() async throws {
        let queue = SendQueue<Int>()
        for i in 0..<10 { await queue.add(i) }
        #expect(queue.take() == Array(0..<10), "everything queued, in order, in one batch")
        // Busy with that batch: idle() waits until the submitter comes back empty-handed.
        let idled = Counter()
        let idle = Task {
            await queue.idle()
            idled.add()
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(idled.value == 0, "still deciding the batch")
        #expect(queue.take().isEmpty)
        await idle.value
        #expect(idled.value == 1)

        // A full queue holds the reader until the submitter takes.
        let added = Counter()
        let reader = Task {
            for i in 0..<(SendQueue<Int>.limit + 5) {
                await queue.add(i)
                added.add()
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(added.value == SendQueue<Int>.limit - 1, "the add that fills the queue waits")
        let first = queue.take()
        await reader.value
        let second = queue.take()
        #expect(first + second == Array(0..<(SendQueue<Int>.limit + 5)))
    }

    @Test(.timeLimit(.minutes(1))) func aStoppedQueueWakesItsWaitersAndNeverBlocksAgain() async throws {
        let queue = SendQueue<Int>()
        for i in 0..<(SendQueue<Int>.limit - 1) { await queue.add(i) }
        let reader = Task { await queue.add(-1) }  // fills the queue: waits for space
        let idle = Task { await queue.idle() }
        try await Task.sleep(for: .milliseconds(50))
        queue.stop()  // the submitter is gone (cancelled)
        await reader.value
        await idle.value
        await queue.add(1)
        await queue.idle()
        #expect(queue.take().isEmpty, "nothing is queued for a submitter that is gone")
    }
}

/// A thread-safe count for tests.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
