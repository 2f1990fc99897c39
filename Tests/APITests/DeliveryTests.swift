import Foundation
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
@testable import API
import Projections
@testable import EventLog

/// `DurableDeliveries` and `SocketOutbox` on test channels: frames leave only once their
/// seq is durable, in seq order whatever the registration order, a failed log turns acks into
/// failure frames, and a reader that stops reading is asked to close with 1008. The channels are
/// `NIOAsyncTestingChannel`s, whose loop may be used from any thread, as the log's writer
/// thread does when it releases a batch (an `EmbeddedEventLoop` may not).
@Suite struct DeliveryTests {
    final class Fixture {
        let directory = NSTemporaryDirectory() + "chat-es-delivery-" + UUID().uuidString
        let log: EventLog
        let hub = Hub()
        let deliveries: DurableDeliveries

        init() throws {
            log = try EventLog.open(directory: directory)
            deliveries = DurableDeliveries(log: log, hub: hub, metrics: ServiceMetrics())
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func socket(user: UInt32, id: UInt64) -> (SocketOutbox, NIOAsyncTestingChannel) {
            let channel = NIOAsyncTestingChannel()
            let outbox = SocketOutbox(user: user, session: TokenID(hi: 0, lo: UInt64(user)), id: id, channel: channel)
            hub.open(outbox)
            return (outbox, channel)
        }

        func reserve() throws -> UInt64 {
            try log.reserve([NewRecord(timestamp: 1, type: 1, version: 1, payload: [1, 2, 3])]).upperBound
        }
    }

    static func unavailable(_ clientId: String) -> String {
        FrameError(code: "unavailable", detail: "The message could not be stored.", clientId: clientId).frame
    }

    /// The frames written so far, once the loop has run what was handed to it.
    static func texts(_ channel: NIOAsyncTestingChannel) async throws -> [String] {
        await channel.testingEventLoop.run()
        var out: [String] = []
        while let frame = try await channel.readOutbound(as: WebSocketFrame.self) {
            out.append(String(buffer: frame.data))
        }
        return out
    }

    /// Runs the channel's loop until `channel` has `count` frames, or fails after 5 s.
    static func frames(_ channel: NIOAsyncTestingChannel, count: Int) async throws -> [String] {
        var seen: [String] = []
        for _ in 0..<500 {
            seen += try await texts(channel)
            if seen.count >= count { return seen }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("only \(seen.count) of \(count) frames: \(seen)")
        return seen
    }

    @Test func framesWaitForDurabilityAndLeaveInSeqOrder() async throws {
        let f = try Fixture()
        let (alice, aliceChannel) = f.socket(user: 1, id: 10)
        let (_, bobChannel) = f.socket(user: 2, id: 20)
        let first = try f.reserve()
        let second = try f.reserve()
        // Registered in the opposite order of their seqs.
        f.deliveries.after(second, Delivery(reply: (alice, WireFrame("ack-\(second)"), "c0"),
                                            fanout: Fanout(users: [2, 1], exceptSocket: 10, frame: WireFrame("msg-\(second)"))))
        f.deliveries.after(first, Delivery(reply: (alice, WireFrame("ack-\(first)"), "c0"),
                                           fanout: Fanout(users: [2, 1], exceptSocket: 10, frame: WireFrame("msg-\(first)"))))
        try await f.log.waitUntilDurable(second)
        #expect(try await Self.frames(aliceChannel, count: 2) == ["ack-\(first)", "ack-\(second)"])
        #expect(try await Self.frames(bobChannel, count: 2) == ["msg-\(first)", "msg-\(second)"])
        // Already durable: out on the loop's next turn, without waiting for another batch.
        f.deliveries.after(first, Delivery(reply: (alice, WireFrame("again"), "c0")))
        #expect(try await Self.frames(aliceChannel, count: 1) == ["again"])
        await f.log.close()
    }

    @Test func aFailedLogTurnsPendingAcksIntoFailureFrames() async throws {
        let f = try Fixture()
        let (alice, channel) = f.socket(user: 1, id: 10)
        let (_, bobChannel) = f.socket(user: 2, id: 20)
        f.log.withCond { f.log.injectWriteError = true }
        let seq = try f.reserve()
        f.deliveries.after(seq, Delivery(reply: (alice, WireFrame("ack"), "c1"),
                                         fanout: Fanout(users: [2], exceptSocket: nil, frame: WireFrame("msg"))))
        await #expect(throws: EventLogError.self) { try await f.log.waitUntilDurable(seq) }
        #expect(try await Self.frames(channel, count: 1) == [Self.unavailable("c1")])
        #expect(try await Self.texts(bobChannel).isEmpty, "nothing is delivered that was not stored")
        // Later registrations fail at once too.
        f.deliveries.after(seq + 1, Delivery(reply: (alice, WireFrame("ack"), "c2")))
        #expect(try await Self.frames(channel, count: 1) == [Self.unavailable("c2")])
    }

    @Test func aReaderThatStopsReadingIsAskedToCloseWith1008() async throws {
        let channel = NIOAsyncTestingChannel()
        let outbox = SocketOutbox(user: 1, session: TokenID(hi: 0, lo: 1), id: 1, channel: channel)
        var requests = outbox.closeRequested.makeAsyncIterator()
        // On the loop, as the hub writes, so each send is written before the next line runs.
        try await channel.testingEventLoop.executeInContext {
            outbox.send("while writable")
            channel.isWritable = false
            for i in 0..<SocketOutbox.backlogLimit { outbox.send("backlog \(i)") }
            outbox.send("one too many")
        }
        let request = await requests.next()
        #expect(request?.0 == .policyViolation)
        let written = try await Self.texts(channel)
        #expect(written.count == SocketOutbox.backlogLimit + 1)
        #expect(written.last == "backlog \(SocketOutbox.backlogLimit - 1)")
        outbox.send("after the end")
        #expect(try await Self.texts(channel).isEmpty)
    }
}
