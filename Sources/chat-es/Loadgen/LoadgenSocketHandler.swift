import Foundation
import NIOCore
import NIOWebSocket

/// The event-loop side of a `LoadgenSocket`: handles each inbound frame where it is read,
/// keeps the send window, and writes the sends a read made room for with one flush.
/// Everything but `socket.state` is touched on the channel's event loop only.
final class LoadgenSocketHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let socket: LoadgenSocket
    private var run: LoadgenRunContext { socket.context }
    private var channelContext: ChannelHandlerContext?
    private var schedule: LoadgenSchedule?
    /// Paced sends the schedule has made due and the window has not let out yet.
    private var due = 0
    private var interval: Duration?
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
    private let inboundRun: LoadgenInbound.Run

    init(socket: LoadgenSocket) {
        self.socket = socket
        masks = LoadgenMaskGenerator()
        let runID = socket.context.runID
        inboundRun = LoadgenInbound.Run(
            clientIdPrefix: Array("\(runID)-\(socket.senderIndex ?? -1)-".utf8),
            username: Array(socket.user.username.utf8),
            bodyPrefix: Array("lg \(runID) ".utf8))
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
            handle(frame.unmaskedData, context: context)
        case .text:
            partial = frame.unmaskedData
        case .continuation:
            guard var buffer = partial else { return }
            var more = frame.unmaskedData
            buffer.writeBuffer(&more)
            partial = frame.fin ? nil : buffer
            if frame.fin { handle(buffer, context: context) }
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
            let interval = Duration.nanoseconds(Int64((Double(run.senders) / run.rate * 1e9).rounded()))
            self.interval = interval
            nextTick = schedule.start + interval * senderIndex / run.senders
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
            nextTick += interval
        }
        pump(context: context)
        flushIfNeeded(context: context)
        guard nextTick < schedule.end else { return }
        // Wake on the run's 1 ms grid, not at each sender's own instant: the senders of a loop
        // whose sends fall in the same millisecond then go out in one loop iteration, one
        // wake-up instead of one each (at 20,000 msg/s that was most of this process's CPU).
        // Each message's latency is still measured from its actual send.
        let grid = LoadgenClock.nanoseconds(Self.pacingGrid)
        let offset = LoadgenClock.nanoseconds(schedule.start.duration(to: nextTick))
        let wake = schedule.start + .nanoseconds((offset + grid - 1) / grid * grid)
        context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: Self.timeAmount(now.duration(to: wake))) {
            self.tick(context: context)
        }
    }

    /// The pacing grid (see `tick`).
    static let pacingGrid: Duration = .milliseconds(1)

    /// Sends while the window, the schedule and any rate-limit pause allow. Unpaced, the
    /// window is refilled once half of it is free: a refill is then one write(2) of many
    /// frames, where topping it up after every ack would cost a write per frame on both
    /// sides, as much load generator as server.
    private func pump(context: ChannelHandlerContext) {
        guard let schedule, !closing, context.channel.isActive else { return }
        if interval == nil, run.window - inFlight < (run.window + 1) / 2 { return }
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
        let sentAt = LoadgenClock.nanos()
        let sending: Bool = socket.state.withLock { state in
            guard !state.stopped else { return false }
            state.pending[seq] = LoadgenSocket.Pending(firstSent: sentAt, attempts: 0)
            state.counters.sent += 1
            return true
        }
        guard sending else { return false }
        write(.text, frame(seq: seq, sentAt: sentAt, allocator: context.channel.allocator), context: context)
        seq += 1
        inFlight += 1
        return true
    }

    /// The send frame of message `seq` (the same bytes on every attempt).
    private func frame(seq: Int, sentAt: UInt64, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 160 + run.messageBytes)
        LoadgenFrames.writeSend(
            into: &buffer, receiver: socket.receivers[seq % socket.receivers.count], runID: run.runID,
            senderIndex: socket.senderIndex ?? 0, sentAt: sentAt, seq: seq, minBytes: run.messageBytes)
        return buffer
    }

    /// Re-sends a rate-limited frame (same client_id), if it is still unanswered.
    private func resend(_ seq: Int, context: ChannelHandlerContext) {
        guard !closing, context.channel.isActive else { return }
        let sentAt: UInt64? = socket.state.withLock { state in
            guard let pending = state.pending[seq] else { return nil }
            state.counters.retries += 1
            return pending.firstSent
        }
        if let sentAt { write(.text, frame(seq: seq, sentAt: sentAt, allocator: context.channel.allocator), context: context) }
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

    /// A Swift duration as an event-loop delay (negative waits run at once).
    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(max(0, LoadgenClock.nanoseconds(duration)))
    }

    // MARK: receiving

    private func handle(_ text: ByteBuffer, context: ChannelHandlerContext) {
        let now = LoadgenClock.nanos()
        guard let frame = LoadgenInbound(text, run: inboundRun) else {
            socket.state.withLock { $0.counters.badFrames += 1 }
            return
        }
        switch frame.kind {
        case .ack:
            let sentAt: UInt64? = socket.state.withLock { state in
                guard let seq = frame.sendSeq, let pending = state.pending.removeValue(forKey: seq) else {
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
        case .message:
            // Count only this run's messages addressed to this user (not copies of our own sends).
            guard let sentAt = frame.sentAt else { return }
            socket.state.withLock { $0.counters.delivered += 1 }
            run.latencies.recordDelivery(nanos: now >= sentAt ? now - sentAt : 0, shard: socket.user.index)
        case .error where frame.code == "rate_limited":
            // Keep the window slot and send the same client_id again after a pause (the
            // server stores it once); the sender pauses too, so the load adapts to the limit.
            let pause: Duration? = socket.state.withLock { state in
                state.counters.rateLimited += 1
                guard let seq = frame.sendSeq, state.pending[seq] != nil else { return nil }
                state.pending[seq]!.attempts += 1
                return LoadgenFrames.retryPause(attempt: state.pending[seq]!.attempts)
            }
            guard let pause, let seq = frame.sendSeq else { return }
            let until = ContinuousClock.now + pause
            pausedUntil = max(pausedUntil ?? until, until)
            context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: Self.timeAmount(pause)) {
                self.resend(seq, context: context)
            }
        case .error:
            let released = socket.state.withLock { state in
                state.counters.errorCodes[frame.code ?? "unknown", default: 0] += 1
                return frame.sendSeq.flatMap { state.pending.removeValue(forKey: $0) } != nil
            }
            if released { inFlight -= 1 }
        case .other:
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
