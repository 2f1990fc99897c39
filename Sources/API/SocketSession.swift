import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import Projections

/// One open WebSocket: reads frames in order, decides sends through the Ledger in arrival
/// order, and acknowledges each only once it is durable (waits run concurrently, so a
/// pipelining client is not held to one fsync per message).
struct SocketSession {
    let service: ChatService
    let ledger: Ledger
    let user: VerifiedToken
    let socketId: UInt64
    let outbound: WebSocketOutboundWriter

    static let maxMessageBytes = 64 * 1024

    func run(inbound: WebSocketInboundStream, queue: AsyncStream<String>) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await frame in queue { try await outbound.write(.text(frame)) }
                // The queue ended: the socket overflowed, or the server is shutting down.
                try? await outbound.close(service.isStopping ? .goingAway : .policyViolation,
                                          reason: service.isStopping ? "server shutting down" : "outbound queue overflow")
            }
            var bucket = LocalBucket(rate: service.config.socketRate, burst: service.config.socketBurst)
            var iterator = inbound.messages(maxSize: Self.maxMessageBytes).makeAsyncIterator()
            while let message = try await iterator.next() {
                guard case let .text(text) = message else {
                    push(FrameError(code: "invalid_frame", detail: "Frames must be JSON text.", clientId: nil).frame)
                    continue
                }
                await handle(text, bucket: &bucket, group: &group)
            }
            service.hub.close(user: user.userId, socket: socketId)
            try await group.waitForAll()
        }
    }

    private func push(_ frame: String) {
        service.hub.push(frame, user: user.userId, socket: socketId)
    }

    private func handle(_ text: String, bucket: inout LocalBucket, group: inout ThrowingTaskGroup<Void, Error>) async {
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
            await send(fields, bucket: &bucket, group: &group)
        case .string("ping")?:
            push("{\"type\":\"pong\"}")
        case .string("sync")?:
            guard case let .number(n)? = fields["after"], let after = UInt64(n) else {
                return push(FrameError(code: "invalid_frame", detail: "sync needs an integer 'after' >= 0.", clientId: nil).frame)
            }
            await sync(after: after)
        case .string("message")?:
            await send(fields, bucket: &bucket, group: &group)
        default:
            push(FrameError(code: "invalid_frame", detail: "Unknown frame type.", clientId: nil).frame)
        }
    }

    private func send(_ fields: [String: JSONValue], bucket: inout LocalBucket, group: inout ThrowingTaskGroup<Void, Error>) async {
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
            outcome = try await ledger.send(from: user.userId, to: parsed.receiver, text: parsed.text, clientId: parsed.clientId)
        } catch {
            return push(FrameError(code: "unavailable", detail: "The message could not be stored.", clientId: parsed.clientId).frame)
        }
        let service = self.service
        let user = self.user
        let socketId = self.socketId
        switch outcome {
        case let .rejected(code, detail):
            push(FrameError(code: code, detail: detail, clientId: parsed.clientId).frame)
        case let .duplicate(message):
            var ack = message
            ack.clientId = parsed.clientId
            group.addTask {
                try? await service.durable(message.id)
                service.hub.push(ack.ackFrame, user: user.userId, socket: socketId)
            }
        case let .stored(message, deliverTo):
            group.addTask {
                do {
                    try await service.durable(message.id)
                } catch {
                    service.hub.push(FrameError(code: "unavailable", detail: "The message could not be stored.", clientId: message.clientId).frame,
                                     user: user.userId, socket: socketId)
                    return
                }
                service.metrics.messages.increment()
                service.hub.push(message.ackFrame, user: user.userId, socket: socketId)
                service.hub.deliver(Fanout(users: deliverTo, exceptSocket: socketId, frame: message.fields(type: "message")))
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
