import API
import Foundation
import HummingbirdWSClient
import Logging
import NIOPosix

/// One user's WebSocket during a load run: it receives acks and deliveries
/// and, for sender users, sends message frames at the scheduled pace.
final class LoadgenSocket: Sendable {
    /// A frame sent and not yet acked (or rejected).
    private struct Pending {
        let firstSent: UInt64
        let text: String
        var attempts: Int
    }

    private struct State {
        var counters = LoadgenCounters()
        var pending: [String: Pending] = [:]
        var signalledReady = false
        /// False once the socket has ended (or never opened): its pending frames cannot be answered.
        var open = false
        /// A `rate_limited` answer pauses this sender until then.
        var pausedUntil: ContinuousClock.Instant?
    }

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

    /// Roles of the tasks serving one open socket.
    private enum Role: Sendable {
        case reader, other
    }

    let user: LoadgenUser
    /// Usernames this socket sends to, round robin; empty for receive-only users.
    let receivers: [String]
    /// Position among the senders (staggers the schedule); nil for receive-only users.
    let senderIndex: Int?
    private let context: LoadgenRunContext
    private let window: LoadgenWindow
    private let state = LoadgenLocked(State())
    /// The event loop of this socket's channel; its tasks prefer it and the sender paces on
    /// its timers, so a paced send wakes only that loop's thread.
    private let loop = MultiThreadedEventLoopGroup.singleton.next()

    init(user: LoadgenUser, receivers: [String], senderIndex: Int?, context: LoadgenRunContext) {
        self.user = user
        self.receivers = receivers
        self.senderIndex = senderIndex
        self.context = context
        window = LoadgenWindow(permits: context.window)
    }

    /// Counters so far, the number of frames still awaiting an answer, and whether the socket is open.
    func snapshot() -> (counters: LoadgenCounters, pending: Int, open: Bool) {
        state.withLock { ($0.counters, $0.pending.count, $0.open) }
    }

    /// Stops new sends (the run is over); in-flight frames may still be answered.
    func stopSending() {
        window.close()
    }

    /// Connects and serves the socket until the run closes it.
    func run() async {
        guard await context.connectSlots.acquire() else {
            // The run ended before a connect slot came free (other connects hung).
            state.withLock { $0.counters.connectFailures += 1 }
            markReady(opened: false)
            return
        }
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 16, closeTimeout: .seconds(3))
        configuration.validateUTF8 = true
        // JWTs are URL-safe base64 with dots: no escaping needed in the query.
        let url = "\(context.webSocketBase)/api/chat/send/?token=\(user.access)"
        do {
            _ = try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
                try await WebSocketClient.connect(url: url, configuration: configuration, eventLoopGroup: loop,
                                                  logger: context.logger) { inbound, outbound, _ in
                    self.markReady(opened: true)
                    try await self.serve(inbound: inbound, outbound: outbound)
                }
            }
        } catch {
            state.withLock { state in
                // An open socket's unexpected end is counted by its reader; a close
                // handshake that timed out (LoadgenError) is not, so count it here.
                if !state.signalledReady {
                    state.counters.connectFailures += 1
                } else if error is LoadgenError {
                    state.counters.socketFailures += 1
                }
            }
            context.logger.debug("socket of \(user.username) ended: \(error)")
        }
        markReady(opened: false)
        window.close()
    }

    /// Counts this socket as connected or failed, once, and frees its connect slot.
    private func markReady(opened: Bool) {
        let first = state.withLock { state in
            defer { state.signalledReady = true }
            if !state.signalledReady { state.open = opened }
            return !state.signalledReady
        }
        guard first else { return }
        context.connectSlots.release()
        context.ready.withLock { $0 += 1 }
    }

    /// Reader, sender, re-sender and closer of one open socket. The reader ends
    /// when the socket does; then the others are stopped.
    private func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let (retries, retryInput) = AsyncStream<(String, ContinuousClock.Instant)>.makeStream()
        try await withThrowingTaskGroup(of: Role.self) { group in
            group.addTask {
                await self.read(inbound, retryInput: retryInput)
                return .reader
            }
            group.addTask {
                await self.sendLoop(outbound)
                return .other
            }
            group.addTask {
                await self.resendLoop(retries, outbound: outbound)
                return .other
            }
            group.addTask {
                try await self.closeAtEnd(outbound)
                return .other
            }
            var readerDone = false
            while true {
                do {
                    guard let role = try await group.next() else { break }
                    if role == .reader {
                        readerDone = true
                        window.close()
                        retryInput.finish()
                        group.cancelAll()
                    }
                } catch where readerDone {
                    continue  // the others were cancelled because the socket is gone
                }
            }
        }
    }

    private func read(_ inbound: WebSocketInboundStream, retryInput: AsyncStream<(String, ContinuousClock.Instant)>.Continuation) async {
        do {
            for try await message in inbound.messages(maxSize: 1 << 16) {
                guard case .text(let text) = message else { continue }
                handle(text, retryInput: retryInput)
            }
        } catch {
            context.logger.debug("read on \(user.username) failed: \(error)")
        }
        let unexpected = !context.close.isOpen
        state.withLock { state in
            state.open = false
            if unexpected { state.counters.socketFailures += 1 }
        }
    }

    private func handle(
        _ text: String,
        retryInput: AsyncStream<(String, ContinuousClock.Instant)>.Continuation
    ) {
        let now = LoadgenClock.nanos()
        guard let frame = Inbound(text) else {
            state.withLock { $0.counters.badFrames += 1 }
            return
        }
        switch frame.type {
        case "message.ack":
            let sentAt: UInt64? = state.withLock { state in
                guard let id = frame.client_id, let pending = state.pending.removeValue(forKey: id) else {
                    state.counters.unexpectedAcks += 1
                    return nil
                }
                state.counters.acked += 1
                return pending.firstSent
            }
            if let sentAt {
                context.latencies.recordAck(nanos: now &- sentAt, shard: user.index)
                window.release()
            }
        case "message":
            // Count only this run's messages addressed to this user (not copies of our own sends).
            guard frame.receiver == user.username, let body = frame.message, let sentAt = LoadgenFrames.sendTime(in: body, runID: context.runID) else {
                return
            }
            state.withLock { $0.counters.delivered += 1 }
            context.latencies.recordDelivery(nanos: now >= sentAt ? now - sentAt : 0, shard: user.index)
        case "error" where frame.code == "rate_limited":
            // Keep the window slot and send the same client_id again after a pause (the
            // server stores it once); the sender pauses too, so the load adapts to the limit.
            let due: ContinuousClock.Instant? = state.withLock { state in
                state.counters.rateLimited += 1
                guard let id = frame.client_id, state.pending[id] != nil else { return nil }
                state.pending[id]!.attempts += 1
                let due = ContinuousClock.now + LoadgenFrames.retryPause(attempt: state.pending[id]!.attempts)
                state.pausedUntil = max(state.pausedUntil ?? due, due)
                return due
            }
            if let due, let id = frame.client_id { retryInput.yield((id, due)) }
        case "error":
            let released = state.withLock { state in
                state.counters.errorCodes[frame.code ?? "unknown", default: 0] += 1
                return frame.client_id.flatMap { state.pending.removeValue(forKey: $0) } != nil
            }
            if released { window.release() }
        default:
            break  // presence, pong, sync.done: not measured
        }
    }

    private func sendLoop(_ outbound: WebSocketOutboundWriter) async {
        guard let senderIndex, !receivers.isEmpty else { return }
        let schedule = await context.start.wait()
        // Open-loop pacing: each sender owns R/S of the rate, staggered by 1/R so the
        // senders do not fire in bursts; the window still bounds what is in flight.
        let interval: Duration? =
            context.rate > 0 ? .nanoseconds(Int64((Double(context.senders) / context.rate * 1e9).rounded())) : nil
        var next = schedule.start + (interval.map { $0 * senderIndex / context.senders } ?? .zero)
        var seq = 0
        while !Task.isCancelled {
            if let interval {
                if next >= schedule.end { break }
                let wait = ContinuousClock.now.duration(to: next)
                if wait > .zero {
                    let nanos = wait.components.seconds * 1_000_000_000 + wait.components.attoseconds / 1_000_000_000
                    try? await loop.scheduleTask(in: .nanoseconds(nanos)) {}.futureResult.get()
                    if Task.isCancelled { break }
                }
                next += interval
            }
            if let until = state.withLock({ $0.pausedUntil }), until > ContinuousClock.now {
                do { try await Task.sleep(until: min(until, schedule.end), clock: .continuous) } catch { break }
            }
            if ContinuousClock.now >= schedule.end { break }
            guard await window.acquire() else { break }
            if ContinuousClock.now >= schedule.end {
                window.release()
                break
            }
            let clientID = "\(context.runID)-\(senderIndex)-\(seq)"
            let sentAt = LoadgenClock.nanos()
            let text = LoadgenFrames.send(
                receiver: receivers[seq % receivers.count], clientID: clientID,
                body: LoadgenFrames.body(runID: context.runID, sentAt: sentAt, seq: seq, minBytes: context.messageBytes)
            )
            seq += 1
            state.withLock { state in
                state.pending[clientID] = Pending(firstSent: sentAt, text: text, attempts: 0)
                state.counters.sent += 1
            }
            do {
                try await outbound.write(.text(text))
            } catch {
                break  // the socket is gone; the reader counts it
            }
        }
    }

    private func resendLoop(
        _ retries: AsyncStream<(String, ContinuousClock.Instant)>,
        outbound: WebSocketOutboundWriter
    ) async {
        for await (clientID, due) in retries {
            if ContinuousClock.now < due {
                do { try await Task.sleep(until: due, clock: .continuous) } catch { return }
            }
            guard let text = state.withLock({ $0.pending[clientID]?.text }) else { continue }
            state.withLock { $0.counters.retries += 1 }
            do {
                try await outbound.write(.text(text))
            } catch {
                return
            }
        }
    }

    /// Sends a close frame once the run is over. If the server does not finish the
    /// close handshake in time, throwing cancels the reader and drops the socket.
    private func closeAtEnd(_ outbound: WebSocketOutboundWriter) async throws {
        await context.close.wait()
        try Task.checkCancellation()
        try? await outbound.close(.normalClosure, reason: nil)
        try await Task.sleep(for: .seconds(3))
        throw LoadgenError(description: "close handshake of \(user.username) timed out")
    }
}
