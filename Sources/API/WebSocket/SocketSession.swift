import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import Projections

/// One open WebSocket: reads frames in order; queues valid sends (`SendQueue`), which a
/// submitter hands the Ledger a burst at a time, in arrival order; each answer goes to
/// `DurableDeliveries`, which acknowledges it once durable (so a pipelining client is not held
/// to one fsync per message). Runs on the channel's loop.
struct SocketSession {
    let service: ChatService
    let ledger: Ledger
    let deliveries: DurableDeliveries
    let user: VerifiedToken
    let outbox: SocketOutbox
    let outbound: WebSocketOutboundWriter
    let receiverKeys: ReceiverKeys

    static let maxMessageBytes = 64 * 1024

    var socketId: UInt64 { outbox.id }

    func run(inbound: WebSocketInboundStream) async throws {
        let queue = SendQueue<QueuedSend>()
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
            group.addTask {
                for await _ in queue.signals {
                    while case let batch = queue.take(), !batch.isEmpty { await decide(batch) }
                }
                queue.stop()
            }
            var bucket = LocalBucket(rate: service.config.socketRate, burst: service.config.socketBurst)
            var iterator = inbound.messages(maxSize: Self.maxMessageBytes).makeAsyncIterator()
            var failure: (any Error)?
            do {
                while let message = try await iterator.next() {
                    guard case let .text(text) = message else {
                        push(FrameError(code: "invalid_frame", detail: "Frames must be JSON text.", clientId: nil).frame)
                        continue
                    }
                    await handle(text, bucket: &bucket, queue: queue)
                }
            } catch {
                failure = error  // the read failed: the sends read before it are still decided
            }
            queue.finish()
            await queue.idle()
            service.hub.close(outbox)
            try await group.waitForAll()
            if let failure { throw failure }
        }
    }

    private func push(_ frame: String) {
        outbox.send(frame)
    }

    private func handle(_ text: String, bucket: inout LocalBucket, queue: SendQueue<QueuedSend>) async {
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
            await send(fields, bucket: &bucket, queue: queue)
        case .string("ping")?:
            push("{\"type\":\"pong\"}")
        case .string("sync")?:
            guard case let .number(n)? = fields["after"], let after = UInt64(n) else {
                return push(FrameError(code: "invalid_frame", detail: "sync needs an integer 'after' >= 0.", clientId: nil).frame)
            }
            await queue.idle()  // the sends read before it are decided first
            await sync(after: after)
        case .string("message")?:
            await send(fields, bucket: &bucket, queue: queue)
        default:
            push(FrameError(code: "invalid_frame", detail: "Unknown frame type.", clientId: nil).frame)
        }
    }

    /// A send that passed validation and the rate limit, waiting for the Ledger.
    struct QueuedSend: Sendable {
        let receiver: String
        let text: String
        let clientId: String?
    }

    private func send(_ fields: [String: JSONValue], bucket: inout LocalBucket, queue: SendQueue<QueuedSend>) async {
        let parsed: (receiver: String, text: String, clientId: String?)
        switch Validation.sendFields(fields) {
        case let .failure(error): return push(error.frame)
        case let .success(p): parsed = p
        }
        guard bucket.take() else {
            return push(FrameError(code: "rate_limited", detail: "Too many messages; slow down.", clientId: parsed.clientId).frame)
        }
        await queue.add(QueuedSend(receiver: parsed.receiver, text: parsed.text, clientId: parsed.clientId))
    }

    /// Decides a batch of this socket's sends in one Ledger call; acks and deliveries of the
    /// stored ones were registered inside it, in seq order.
    private func decide(_ batch: [QueuedSend]) async {
        let (outbox, socketId, deliveries) = (self.outbox, self.socketId, self.deliveries)
        let prepared = batch.map { send in
            try? PreparedSend(sender: user.userId, receiver: send.receiver, receiverKey: receiverKeys.key(for: send.receiver),
                              text: send.text, clientId: send.clientId, keys: ledger.keys)
        }
        // Without a key the account was just deleted: the session has ended, the socket is closing.
        guard !prepared.contains(where: { $0 == nil }) else { return }
        let requests = zip(batch, prepared).map { send, prepared in
            Ledger.SendRequest(send: prepared!) { message, deliverTo in
                let frames = message.wireFrames()
                deliveries.after(message.id, Delivery(
                    reply: (outbox, frames.ack, send.clientId),
                    fanout: Fanout(users: deliverTo, exceptSocket: socketId, frame: frames.message),
                    storesMessage: true, registeredAt: DispatchTime.now().uptimeNanoseconds))
            }
        }
        let outcomes = await ledger.send(requests, from: user)
        for (send, outcome) in zip(batch, outcomes) {
            switch outcome {
            case .failure:
                push(FrameError.notStored(clientId: send.clientId).frame)
            case let .success(.rejected(code, detail)):
                push(FrameError(code: code, detail: detail, clientId: send.clientId).frame)
            case let .success(.duplicate(message)):
                var ack = message
                ack.clientId = send.clientId
                deliveries.after(message.id, Delivery(reply: (outbox, ack.ackWireFrame, send.clientId)))
            case .success(.stored):
                break
            }
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
                for m in page {
                    // The session may end mid-sync: from then on the socket gets nothing.
                    guard !outbox.isSilenced else { return }
                    try await outbound.write(.text(m.fields(type: "message")))
                }
                guard let tail = page.last else { break }
                last = tail.id
                cursor = tail.id
                if page.count < 500 { break }
            }
            guard !outbox.isSilenced else { return }
            try await outbound.write(.text("{\"type\":\"sync.done\",\"last\":\(last)}"))
        } catch {
            push(FrameError(code: "unavailable", detail: "sync failed.", clientId: nil).frame)
        }
    }
}
