import Atomics
import NIOCore
import NIOWebSocket
import Projections

/// One socket's way out: frames are written straight to its channel on the channel's event
/// loop, a batch at a time with one flush, instead of through a per-socket queue and task.
/// A reader that stops reading is detected by the channel's write buffer: once more than
/// `bufferedBytesLimit` wait in it, `backlogLimit` further frames are allowed, then the socket
/// is closed with 1008 so it cannot hold everybody else's memory.
///
/// A socket belongs to the session whose access token opened it. When that session ends, the
/// Ledger silences the outbox from its own thread, at the moment the end is decided: every
/// frame not yet written is dropped from then on, and the socket closes with 4401.
final class SocketOutbox: @unchecked Sendable {
    static let bufferedBytesLimit = 1 << 20
    static let backlogLimit = 4096

    let user: UInt32
    let session: TokenID
    let id: UInt64
    let channel: any Channel
    /// Set once the session has ended; read on the loop before every write.
    private let silenced = ManagedAtomic(false)
    /// Asks the socket's session to close with this code (shutdown, overflow).
    private let closeRequests: AsyncStream<(WebSocketErrorCode, String)>.Continuation
    let closeRequested: AsyncStream<(WebSocketErrorCode, String)>

    // Touched on the channel's event loop only.
    private var backlog = 0
    private var ended = false
    private var needsFlush = false
    private var lookedUpEncoder = false
    private var encoder: ChannelHandlerContext?
    /// Frames kept until `release()`: the outbox joins the hub before the upgrade is answered
    /// (so no event applied after the client sees its socket open can miss it), and nothing
    /// may reach the channel before the WebSocket handlers do.
    private var held: [WireFrame]?

    init(user: UInt32, session: TokenID, id: UInt64, channel: any Channel, held: Bool = false) {
        self.user = user
        self.session = session
        self.id = id
        self.channel = channel
        self.held = held ? [] : nil
        (closeRequested, closeRequests) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Writes the frames held since the outbox opened, and every later one as it comes. Loop only.
    func release() {
        guard let frames = held else { return }
        held = nil
        for frame in frames { enqueue(frame) }
        flush()
    }

    var loop: any EventLoop { channel.eventLoop }

    /// Queues `frame` without flushing; call `flush()` once the batch is written. Loop only.
    func enqueue(_ frame: WireFrame) {
        guard !ended, !isSilenced else { return }
        if held != nil {
            if held!.count >= Self.backlogLimit { return end(.policyViolation, "outbound queue overflow") }
            held!.append(frame)
            return
        }
        if channel.isWritable {
            backlog = 0
        } else {
            backlog += 1
            if backlog > Self.backlogLimit { return end(.policyViolation, "outbound queue overflow") }
        }
        if let below = encoderContext() {
            below.write(NIOAny(frame.bytes), promise: nil)
        } else {
            channel.write(WebSocketFrame(fin: true, opcode: .text, data: frame.payload), promise: nil)
        }
        needsFlush = true
    }

    /// The frame encoder's context, looked up once. Bytes written through it go straight to
    /// the socket: our frames are final bytes already, so passing them through the handlers
    /// above and the encoder (which writes each header into a buffer of its own, as the
    /// frame's payload is never uniquely owned by then) only costs time. Loop only.
    private func encoderContext() -> ChannelHandlerContext? {
        if !lookedUpEncoder {
            lookedUpEncoder = true
            encoder = try? channel.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        }
        return encoder
    }

    /// Flushes what `enqueue` wrote since the last flush. Loop only.
    func flush() {
        guard needsFlush, held == nil else { return }
        needsFlush = false
        if let encoder { encoder.flush() } else { channel.flush() }
    }

    /// Writes one frame now from any thread.
    func send(_ text: String) {
        let frame = WireFrame(text)
        if loop.inEventLoop {
            enqueue(frame)
            flush()
        } else {
            loop.execute {
                self.enqueue(frame)
                self.flush()
            }
        }
    }

    /// True once the session has ended: nothing more may be written.
    var isSilenced: Bool { silenced.load(ordering: .acquiring) }

    /// The session ended: from now on nothing is written, and the socket closes with 4401.
    /// From any thread.
    func sessionEnded() {
        silenced.store(true, ordering: .releasing)
        loop.execute { self.end(.unknown(4401), "session ended") }
    }

    /// Asks the socket to close with 1001 (graceful shutdown), from any thread.
    func goAway() {
        loop.execute { self.end(.goingAway, "server shutting down") }
    }

    /// Stops writing and asks the session to close the socket with `code`. Loop only.
    func end(_ code: WebSocketErrorCode, _ reason: String) {
        guard !ended else { return }
        ended = true
        closeRequests.yield((code, reason))
    }

    /// Ends the close requests stream: the session is over.
    func finish() { closeRequests.finish() }
}
