import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// One user's WebSocket during a load run: it receives acks and deliveries and, for sender
/// users, sends message frames at the scheduled pace.
///
/// The socket is a plain NIO channel handler (`LoadgenSocketHandler`) on one event loop, not
/// an async stream per socket: the frames a read brings in are handled in place, and the
/// sends they make room for go out in one write. A load generator that pays a task hop and a
/// write(2) per frame measures itself, not the server.
final class LoadgenSocket: Sendable {
    /// A frame sent and not yet acked (or rejected); its text follows from its seq and send time.
    struct Pending {
        let firstSent: UInt64
        var attempts: Int
    }

    /// What the handler and the orchestrator share; the handler keeps the rest loop-confined.
    struct State {
        var counters = LoadgenCounters()
        /// By the seq in the frame's client id.
        var pending: [Int: Pending] = [:]
        var signalledReady = false
        /// False once the socket has ended (or never opened): its pending frames cannot be answered.
        var open = false
        /// Set when the run's sending time is over.
        var stopped = false
    }

    let user: LoadgenUser
    /// Usernames this socket sends to, round robin; empty for receive-only users.
    let receivers: [String]
    /// Position among the senders (staggers the schedule); nil for receive-only users.
    let senderIndex: Int?
    let context: LoadgenRunContext
    let state = LoadgenLocked(State())
    private let loop = MultiThreadedEventLoopGroup.singleton.next()

    /// Close handshakes longer than this count as a socket failure.
    private static let closeTimeout: TimeAmount = .seconds(3)

    init(user: LoadgenUser, receivers: [String], senderIndex: Int?, context: LoadgenRunContext) {
        self.user = user
        self.receivers = receivers
        self.senderIndex = senderIndex
        self.context = context
    }

    /// Counters so far, the number of frames still awaiting an answer, and whether the socket is open.
    func snapshot() -> (counters: LoadgenCounters, pending: Int, open: Bool) {
        state.withLock { ($0.counters, $0.pending.count, $0.open) }
    }

    /// Stops new sends (the run is over); in-flight frames may still be answered.
    func stopSending() {
        state.withLock { $0.stopped = true }
    }

    /// Connects, sends from the start gate on, and closes the socket at the close gate.
    func run() async {
        guard await context.connectSlots.acquire() else {
            // The run ended before a connect slot came free (other connects hung).
            state.withLock { $0.counters.connectFailures += 1 }
            markReady(opened: false)
            return
        }
        let handler = LoadgenSocketHandler(socket: self)
        let channel: any Channel
        do {
            channel = try await connect(handler)
        } catch {
            state.withLock { $0.counters.connectFailures += 1 }
            context.logger.debug("socket of \(user.username) failed to open: \(error)")
            markReady(opened: false)
            return
        }
        markReady(opened: true)
        if senderIndex != nil, !receivers.isEmpty {
            let schedule = await context.start.wait()
            loop.execute { handler.begin(schedule) }
        }
        await context.close.wait()
        let timeout = loop.scheduleTask(in: Self.closeTimeout) {
            guard channel.isActive else { return }
            self.state.withLock { $0.counters.socketFailures += 1 }
            self.context.logger.debug("close handshake of \(self.user.username) timed out")
            channel.close(promise: nil)
        }
        loop.execute { handler.startClose() }
        try? await channel.closeFuture.get()
        timeout.cancel()
        state.withLock { $0.open = false }
    }

    /// Opens the TCP connection and upgrades it; resolves once the handler is in place.
    private func connect(_ handler: LoadgenSocketHandler) async throws -> any Channel {
        let bases = context.webSocketBases
        let target = try LoadgenSocketTarget(bases[user.index % bases.count], token: user.access)
        let upgraded = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .connect(host: target.host, port: target.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketClientUpgrader<(any Channel)?>(maxFrameSize: 1 << 16) { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(handler)
                            return channel
                        }
                    }
                    var headers = HTTPHeaders()
                    headers.add(name: "Host", value: target.hostHeader)
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<(any Channel)?>(
                        upgradeRequestHead: HTTPRequestHead(version: .http1_1, method: .GET, uri: target.path, headers: headers),
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.close(promise: nil)
                            return channel.eventLoop.makeSucceededFuture(nil)
                        }
                    )
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: .init(upgradeConfiguration: configuration))
                }
            }
        guard let channel = try await upgraded.get() else {
            throw LoadgenError(description: "the server refused the WebSocket upgrade of \(user.username)")
        }
        return channel
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
}

/// Where a load socket connects: host, port and the request path with its token.
struct LoadgenSocketTarget {
    let host: String
    let port: Int
    let hostHeader: String
    let path: String

    init(_ base: String, token: String) throws {
        guard let components = URLComponents(string: base), let host = components.host else {
            throw LoadgenError(description: "bad WebSocket URL \(base)")
        }
        self.host = host
        port = components.port ?? 80
        hostHeader = components.port.map { "\(host.contains(":") ? "[\(host)]" : host):\($0)" } ?? host
        // JWTs are URL-safe base64 with dots: no escaping needed in the query.
        path = components.path + "/api/chat/send/?token=\(token)"
    }
}
