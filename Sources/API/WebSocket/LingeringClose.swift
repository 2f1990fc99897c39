import NIOCore

/// Keeps a WebSocket's TCP connection open for a moment after the server closes it, reading
/// and dropping whatever the peer is still sending (RFC 6455 §7.1.1, nginx's lingering close).
///
/// Closing a socket whose receive buffer holds unread bytes makes the kernel answer with a
/// reset. The peer's send then fails midway and its unread input, the close frame just written
/// among it, may be thrown away: a client pushing a 1 MiB frame past the 64 KiB limit saw
/// ECONNRESET from its own send instead of a clean 1009. So a full close first shuts down the
/// write side (NIO does that after the pending writes, the close frame included), then drains
/// input until the peer closes its side, a byte budget is spent or a timeout passes.
final class LingeringClose: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Longest wait for the peer to stop sending: a 1 MiB frame crosses a slow link in that time.
    static let timeout = TimeAmount.seconds(2)
    /// Most bytes read and dropped before the connection is reset after all.
    static let byteBudget = 8 << 20

    private enum State {
        case open
        case lingering(drained: Int)
        case closed
    }

    private var state = State.open
    private var peerClosedInput = false
    private var timer: Scheduled<Void>?
    /// The promises of the close calls held back while lingering; completed once the channel is gone.
    private var waiting: [EventLoopPromise<Void>] = []

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch (state, mode) {
        case (.open, .all) where !peerClosedInput:
            state = .lingering(drained: 0)
            if let promise { waiting.append(promise) }
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.timeout) { [self] in
                finish(context: context)
            }
            context.close(mode: .output, promise: nil)
            context.read()
        case (.lingering, .all):
            if let promise { waiting.append(promise) }
        default:
            context.close(mode: mode, promise: promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case let .lingering(drained) = state else {
            context.fireChannelRead(data)
            return
        }
        let total = drained + unwrapInboundIn(data).readableBytes
        state = .lingering(drained: total)
        if total > Self.byteBudget { finish(context: context) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The handlers above stopped asking for reads once they were done; draining still needs them.
        guard case .lingering = state else { return context.fireChannelReadComplete() }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            peerClosedInput = true
            if case .lingering = state { finish(context: context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        completeWaiting()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        completeWaiting()
    }

    /// The timer and the held-back promises end in `channelInactive`, which the close brings.
    private func finish(context: ChannelHandlerContext) {
        guard case .lingering = state else { return }
        state = .closed
        context.close(mode: .all, promise: nil)
    }

    private func completeWaiting() {
        timer?.cancel()
        timer = nil
        let promises = waiting
        waiting = []
        for promise in promises { promise.succeed() }
    }
}
