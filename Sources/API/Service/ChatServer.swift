import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import Projections

extension ChatService {
    /// True once shutdown began: sockets then close with 1001.
    var isStopping: Bool { stopping.withLockedValue { $0 } }

    /// The WebSocket upgrade decision: a valid access token of an open session upgrades,
    /// anything else is closed at once with 4401.
    func shouldUpgrade(_ head: HTTPRequest, channel: any Channel) async -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        guard let ledger, let deliveries, let target = head.path else { return .dontUpgrade }
        let uri = URI(target)
        var path = uri.path
        if path.count > 1, path.hasSuffix("/") { path.removeLast() }
        guard path == "/api/chat/send" else { return .dontUpgrade }
        // Whatever ends this socket, the peer's unread bytes must not turn the close into a reset.
        try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(LingeringClose(), position: .first)
        }.get()
        var token = uri.queryParameters["token"].map(String.init)
        if token == nil, let header = head.headerFields[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0] == "Bearer" { token = String(parts[1]) }
        }
        guard let token, let verified = await tokens.verify(token, kind: "access"), await ledger.isLiveCatchingUp(verified) else {
            // Refusing the upgrade itself would answer 400; the contract's refusal is close code 4401.
            return .upgrade([:]) { _, outbound, _ in
                try? await outbound.close(.unknown(4401), reason: "authentication failed")
            }
        }
        // A reader that falls this far behind is one SocketOutbox closes (1008).
        _ = channel.setOption(ChannelOptions.writeBufferWaterMark,
                              value: .init(low: SocketOutbox.bufferedBytesLimit / 2, high: SocketOutbox.bufferedBytesLimit))
        let executor = EventLoopTaskExecutor(channel.eventLoop)
        let outbox = await ledger.preopenSocket(verified, channel: channel)
        // An upgrade that never completes leaves no outbox behind.
        let hub = self.hub
        channel.closeFuture.whenComplete { _ in hub.close(outbox) }
        return .upgrade([:]) { inbound, outbound, _ in
            await withTaskExecutorPreference(executor) {
                await self.serveSocket(user: verified, outbox: outbox, ledger: ledger, deliveries: deliveries,
                                       inbound: inbound, outbound: outbound)
            }
        }
    }

    private func serveSocket(user: VerifiedToken, outbox: SocketOutbox, ledger: Ledger, deliveries: DurableDeliveries,
                             inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let opened: (seq: UInt64, presence: Fanout?)
        outbox.loop.execute { outbox.release() }
        do {
            // The session may have ended since the upgrade was decided.
            guard let result = try await ledger.socketOpened(user, outbox: outbox) else {
                hub.close(outbox)
                try? await outbound.close(.unknown(4401), reason: "session ended")
                return
            }
            opened = result
            try await durable(opened.seq)
        } catch {
            hub.close(outbox)
            try? await outbound.close(.unexpectedServerError, reason: "storage unavailable")
            return
        }
        metrics.socketsOpened.increment()
        if isStopping { outbox.goAway() }
        if let presence = opened.presence { hub.deliver(presence) }
        let session = SocketSession(service: self, ledger: ledger, deliveries: deliveries, user: user,
                                    outbox: outbox, outbound: outbound, receiverKeys: ReceiverKeys(index: ledger.keys.nameIndex))
        do {
            try await session.run(inbound: inbound)
        } catch {
            logger.debug("socket \(outbox.id) ended: \(error)")
        }
        hub.close(outbox)
        if let closed = try? await ledger.socketClosed(userId: user.userId, socketId: outbox.id) {
            try? await durable(closed.seq)
            if let presence = closed.presence { hub.deliver(presence) }
        }
    }

    /// The Hummingbird application: HTTP/1.1 with the WebSocket upgrade on `/api/chat/send/`.
    public func application() -> some ApplicationProtocol {
        let ws = WebSocketServerConfiguration(maxFrameSize: SocketSession.maxMessageBytes, autoPing: .enabled(timePeriod: .seconds(30)))
        return Application(
            responder: ChatResponder(service: self),
            server: .http1WebSocketUpgrade(configuration: .init(ws: ws)) { head, channel, _ in
                await self.shouldUpgrade(head, channel: channel)
            },
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "chat-es"),
            onServerRunning: { _ in self.logger.info("listening on \(self.config.host):\(self.config.port)") },
            logger: logger
        )
    }
}
