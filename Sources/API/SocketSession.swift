import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import Projections

/// One open WebSocket: reads frames in order, decides sends through the Ledger in arrival
/// order, and hands each answer to `DurableDeliveries`, which acknowledges it once durable
/// (so a pipelining client is not held to one fsync per message). Runs on the channel's loop.
struct SocketSession {
    let service: ChatService
    let ledger: Ledger
    let deliveries: DurableDeliveries
    let user: VerifiedToken
    let outbox: SocketOutbox
    let outbound: WebSocketOutboundWriter

    static let maxMessageBytes = 64 * 1024

    var socketId: UInt64 { outbox.id }

    func run(inbound: WebSocketInboundStream) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            let outbound = self.outbound
            let requests = outbox.closeRequested
            group.addTask {
                // Shutdown (1001) or an overflowing reader (1008) asks for the close handshake.
                for await (code, reason) in requests {
                    try? await outbound.close(code, reason: reason)
                    break
                }
            }
            var bucket = LocalBucket(rate: service.config.socketRate, burst: service.config.socketBurst)
            var iterator = inbound.messages(maxSize: Self.maxMessageBytes).makeAsyncIterator()
            while let message = try await iterator.next() {
                guard case let .text(text) = message else {
                    push(FrameError(code: "invalid_frame", detail: "Frames must be JSON text.", clientId: nil).frame)
                    continue
                }
                await handle(text, bucket: &bucket)
            }
            service.hub.close(outbox)
            try await group.waitForAll()
        }
    }

    private func push(_ frame: String) {
        outbox.send(frame)
    }

    private func handle(_ text: String, bucket: inout LocalBucket) async {
        let value: JSONValue
        do {
            value = try JSONParser.parse(text)
        } catch {
            return push(FrameError(code: "invalid_json", detail: "The frame is not valid JSON.", clientId: nil).frame)
        }
        guard case let .object(fields) = value else {
            return push(FrameError(code: "invalid_frame", detail: "A frame must be a JSON object.", clientId: nil).frame)
        }
        switch fields["type"] {
        case nil, .null?:
            await send(fields, bucket: &bucket)
        case .string("ping")?:
            push("{\"type\":\"pong\"}")
        case .string("sync")?:
            guard case let .number(n)? = fields["after"], let after = UInt64(n) else {
                return push(FrameError(code: "invalid_frame", detail: "sync needs an integer 'after' >= 0.", clientId: nil).frame)
            }
            await sync(after: after)
        case .string("message")?:
            await send(fields, bucket: &bucket)
        default:
            push(FrameError(code: "invalid_frame", detail: "Unknown frame type.", clientId: nil).frame)
        }
    }

    private func send(_ fields: [String: JSONValue], bucket: inout LocalBucket) async {
        let parsed: (receiver: String, text: String, clientId: String?)
        switch Validation.sendFields(fields) {
        case let .failure(error): return push(error.frame)
        case let .success(p): parsed = p
        }
        guard bucket.take() else {
            return push(FrameError(code: "rate_limited", detail: "Too many messages; slow down.", clientId: parsed.clientId).frame)
        }
        let outcome: Ledger.SendOutcome
        do {
            let (outbox, socketId, deliveries, clientId) = (self.outbox, self.socketId, self.deliveries, parsed.clientId)
            outcome = try await ledger.send(from: user.userId, to: parsed.receiver, text: parsed.text, clientId: clientId) {
                message, deliverTo in
                let frames = message.wireFrames()
                deliveries.after(message.id, Delivery(
                    reply: (outbox, frames.ack, clientId),
                    fanout: Fanout(users: deliverTo, exceptSocket: socketId, frame: frames.message),
                    storesMessage: true, registeredAt: DispatchTime.now().uptimeNanoseconds))
            }
        } catch {
            return push(FrameError(code: "unavailable", detail: "The message could not be stored.", clientId: parsed.clientId).frame)
        }
        switch outcome {
        case let .rejected(code, detail):
            push(FrameError(code: code, detail: detail, clientId: parsed.clientId).frame)
        case let .duplicate(message):
            var ack = message
            ack.clientId = parsed.clientId
            deliveries.after(message.id, Delivery(reply: (outbox, WireFrame(ack.ackFrame), parsed.clientId)))
        case .stored:
            break  // its ack and deliveries were registered inside the Ledger, in seq order
        }
    }

    /// Replays the user's messages after `after` straight to the socket (not through the
    /// bounded queue, so a long history is not mistaken for a slow reader).
    private func sync(after: UInt64) async {
        var cursor = after
        var last = after
        do {
            while true {
                let page = try await ledger.messagesOfUser(user.userId, after: cursor, limit: 500)
                for m in page { try await outbound.write(.text(m.fields(type: "message"))) }
                guard let tail = page.last else { break }
                last = tail.id
                cursor = tail.id
                if page.count < 500 { break }
            }
            try await outbound.write(.text("{\"type\":\"sync.done\",\"last\":\(last)}"))
        } catch {
            push(FrameError(code: "unavailable", detail: "sync failed.", clientId: nil).frame)
        }
    }
}
