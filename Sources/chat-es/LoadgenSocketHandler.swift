import API
import Foundation
import NIOCore
import NIOWebSocket

/// The event-loop side of a `LoadgenSocket`: handles each inbound frame where it is read,
/// keeps the send window, and writes the sends a read made room for with one flush.
/// Everything but `socket.state` is touched on the channel's event loop only.
final class LoadgenSocketHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// The fields of a frame the load generator reads; everything else is ignored.
    private struct Inbound {
        let type: String?
        let client_id: String?
        let code: String?
        let message: String?
        let receiver: String?

        init?(_ text: String) {
            guard case let .object(fields)? = try? JSONParser.parse(text) else { return nil }
            type = fields["type"]?.stringValue
            client_id = fields["client_id"]?.stringValue
            code = fields["code"]?.stringValue
            message = fields["message"]?.stringValue
            receiver = fields["receiver"]?.stringValue
        }
    }

    private let socket: LoadgenSocket
    private var run: LoadgenRunContext { socket.context }
    private var channelContext: ChannelHandlerContext?
    private var schedule: LoadgenSchedule?
    /// Paced sends the schedule has made due and the window has not let out yet.
    private var due = 0
    private var interval: TimeAmount?
    private var nextTick = ContinuousClock.now
    private var seq = 0
    private var inFlight = 0
    /// A `rate_limited` answer pauses this sender until then.
    private var pausedUntil: ContinuousClock.Instant?
    private var needsFlush = false
    private var closing = false
    /// A text message arriving in fragments.
    private var partial: ByteBuffer?
    private var masks: LoadgenMaskGenerator

    init(socket: LoadgenSocket) {
        self.socket = socket
        masks = LoadgenMaskGenerator()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        channelContext = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        channelContext = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        let unexpected = !closing && !run.close.isOpen
        socket.state.withLock { state in
            state.open = false
            if unexpected { state.counters.socketFailures += 1 }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        run.logger.debug("socket of \(socket.user.username) failed: \(error)")
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text where frame.fin:
            handle(String(buffer: frame.unmaskedData), context: context)
        case .text:
            partial = frame.unmaskedData
        case .continuation:
            guard var buffer = partial else { return }
            var more = frame.unmaskedData
            buffer.writeBuffer(&more)
            partial = frame.fin ? nil : buffer
            if frame.fin { handle(String(buffer: buffer), context: context) }
        case .ping:
            write(.pong, frame.unmaskedData, context: context)
        case .connectionClose:
            if closing {
                context.close(promise: nil)
            } else {
                // The server ends the socket: echo its close, as RFC 6455 asks; the
                // inactive channel counts it unless the run is closing anyway.
                closing = run.close.isOpen
                write(.connectionClose, frame.unmaskedData, context: context)
                context.flush()
                context.close(promise: nil)
            }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        pump(context: context)
        flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    // MARK: sending

    /// Starts sending on the run's schedule. Loop only.
    func begin(_ schedule: LoadgenSchedule) {
        guard let context = channelContext, let senderIndex = socket.senderIndex else { return }
        self.schedule = schedule
        if run.rate > 0 {
            // Open-loop pacing: each sender owns R/S of the rate, staggered by 1/R so the
            // senders do not fire in bursts; the window still bounds what is in flight.
            let nanos = Int64((Double(run.senders) / run.rate * 1e9).rounded())
            interval = .nanoseconds(nanos)
            nextTick = schedule.start + .nanoseconds(nanos * Int64(senderIndex) / Int64(run.senders))
            tick(context: context)
        } else {
            pump(context: context)
            flushIfNeeded(context: context)
        }
    }

    /// Makes every send due whose time has come and sleeps until the next one.
    private func tick(context: ChannelHandlerContext) {
        guard let interval, let schedule else { return }
        let now = ContinuousClock.now
        while nextTick <= now, nextTick < schedule.end {
            due += 1
            nextTick += .nanoseconds(interval.nanoseconds)
        }
        pump(context: context)
        flushIfNeeded(context: context)
        guard nextTick < schedule.end else { return }
        let wait = now.duration(to: nextTick).components
        let nanos = wait.seconds * 1_000_000_000 + wait.attoseconds / 1_000_000_000
        context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: .nanoseconds(max(0, nanos))) {
            self.tick(context: context)
        }
    }

    /// Sends while the window, the schedule and any rate-limit pause allow.
    private func pump(context: ChannelHandlerContext) {
        guard let schedule, !closing, context.channel.isActive else { return }
        while inFlight < run.window, interval == nil || due > 0 {
            let now = ContinuousClock.now
            if now >= schedule.end { return }
            if let pausedUntil, pausedUntil > now { return }
            guard sendNext(context: context) else { return }
            if interval != nil { due -= 1 }
        }
    }

    /// Sends the next message; false once the run has stopped sending.
    private func sendNext(context: ChannelHandlerContext) -> Bool {
        guard let senderIndex = socket.senderIndex else { return false }
        let clientID = "\(run.runID)-\(senderIndex)-\(seq)"
        let sentAt = LoadgenClock.nanos()
        let text = LoadgenFrames.send(
            receiver: socket.receivers[seq % socket.receivers.count], clientID: clientID,
            body: LoadgenFrames.body(runID: run.runID, sentAt: sentAt, seq: seq, minBytes: run.messageBytes)
        )
        let sending: Bool = socket.state.withLock { state in
            guard !state.stopped else { return false }
            state.pending[clientID] = LoadgenSocket.Pending(firstSent: sentAt, text: text, attempts: 0)
            state.counters.sent += 1
            return true
        }
        guard sending else { return false }
        seq += 1
        inFlight += 1
        write(.text, context.channel.allocator.buffer(string: text), context: context)
        return true
    }

    /// Re-sends a rate-limited frame (same client_id), if it is still unanswered.
    private func resend(_ clientID: String, context: ChannelHandlerContext) {
        guard !closing, context.channel.isActive else { return }
        let text: String? = socket.state.withLock { state in
            guard let text = state.pending[clientID]?.text else { return nil }
            state.counters.retries += 1
            return text
        }
        if let text { write(.text, context.channel.allocator.buffer(string: text), context: context) }
        pump(context: context)
        flushIfNeeded(context: context)
    }

    /// Sends the close frame that ends the run for this socket. Loop only.
    func startClose() {
        guard let context = channelContext, context.channel.isActive, !closing else { return }
        closing = true
        var reason = context.channel.allocator.buffer(capacity: 2)
        reason.write(webSocketErrorCode: .normalClosure)
        write(.connectionClose, reason, context: context)
        flushIfNeeded(context: context)
    }

    private func write(_ opcode: WebSocketOpcode, _ data: ByteBuffer, context: ChannelHandlerContext) {
        // Clients must mask; the key need not be secret here, so it comes from a cheap
        // generator instead of a getrandom(2) per frame.
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: masks.next(), data: data)
        context.write(wrapOutboundOut(frame), promise: nil)
        needsFlush = true
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        context.flush()
    }

    // MARK: receiving

    private func handle(_ text: String, context: ChannelHandlerContext) {
        let now = LoadgenClock.nanos()
        guard let frame = Inbound(text) else {
            socket.state.withLock { $0.counters.badFrames += 1 }
            return
        }
        switch frame.type {
        case "message.ack":
            let sentAt: UInt64? = socket.state.withLock { state in
                guard let id = frame.client_id, let pending = state.pending.removeValue(forKey: id) else {
                    state.counters.unexpectedAcks += 1
                    return nil
                }
                state.counters.acked += 1
                return pending.firstSent
            }
            if let sentAt {
                run.latencies.recordAck(nanos: now &- sentAt, shard: socket.user.index)
                inFlight -= 1
            }
        case "message":
            // Count only this run's messages addressed to this user (not copies of our own sends).
            guard frame.receiver == socket.user.username, let body = frame.message,
                  let sentAt = LoadgenFrames.sendTime(in: body, runID: run.runID) else { return }
            socket.state.withLock { $0.counters.delivered += 1 }
            run.latencies.recordDelivery(nanos: now >= sentAt ? now - sentAt : 0, shard: socket.user.index)
        case "error" where frame.code == "rate_limited":
            // Keep the window slot and send the same client_id again after a pause (the
            // server stores it once); the sender pauses too, so the load adapts to the limit.
            let pause: Duration? = socket.state.withLock { state in
                state.counters.rateLimited += 1
                guard let id = frame.client_id, state.pending[id] != nil else { return nil }
                state.pending[id]!.attempts += 1
                return LoadgenFrames.retryPause(attempt: state.pending[id]!.attempts)
            }
            guard let pause, let id = frame.client_id else { return }
            let until = ContinuousClock.now + pause
            pausedUntil = max(pausedUntil ?? until, until)
            let parts = pause.components
            let nanos = parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000
            context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: .nanoseconds(nanos)) {
                self.resend(id, context: context)
            }
        case "error":
            let released = socket.state.withLock { state in
                state.counters.errorCodes[frame.code ?? "unknown", default: 0] += 1
                return frame.client_id.flatMap { state.pending.removeValue(forKey: $0) } != nil
            }
            if released { inFlight -= 1 }
        default:
            break  // presence, pong, sync.done: not measured
        }
    }
}

/// Masking keys for client frames from a xorshift generator seeded once per socket.
struct LoadgenMaskGenerator {
    private var state: UInt64

    init() {
        var seed: UInt64 = 0
        while seed == 0 { seed = UInt64.random(in: 1...UInt64.max) }
        state = seed
    }

    mutating func next() -> WebSocketMaskingKey {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let word = UInt32(truncatingIfNeeded: state)
        return WebSocketMaskingKey([UInt8(word >> 24), UInt8((word >> 16) & 0xFF), UInt8((word >> 8) & 0xFF), UInt8(word & 0xFF)])!
    }
}
