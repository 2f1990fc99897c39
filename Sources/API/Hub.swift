import Foundation

/// Open sockets by user, each with a bounded outbound queue: a slow reader overflows its own
/// queue and is closed (1008) instead of stalling everyone else's delivery.
public final class Hub: @unchecked Sendable {
    public static let queueCapacity = 4096
    private let lock = NSLock()
    private var sockets: [UInt32: [UInt64: AsyncStream<String>.Continuation]] = [:]
    private var total = 0

    public init() {}

    /// A new outbound queue for a socket; frames pushed to it are written in order.
    func open(user: UInt32, socket: UInt64) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(Hub.queueCapacity))
        lock.withLock {
            sockets[user, default: [:]][socket] = continuation
            total += 1
        }
        return stream
    }

    func close(user: UInt32, socket: UInt64) {
        let continuation: AsyncStream<String>.Continuation? = lock.withLock {
            guard let c = sockets[user]?.removeValue(forKey: socket) else { return nil }
            if sockets[user]?.isEmpty == true { sockets[user] = nil }
            total -= 1
            return c
        }
        continuation?.finish()
    }

    /// Pushes a frame to one socket; false (and the queue is ended) when it overflowed.
    @discardableResult
    func push(_ frame: String, user: UInt32, socket: UInt64) -> Bool {
        guard let c = lock.withLock({ sockets[user]?[socket] }) else { return false }
        return offer(frame, to: c)
    }

    func deliver(_ fanout: Fanout) {
        let targets: [AsyncStream<String>.Continuation] = lock.withLock {
            fanout.users.flatMap { user in
                (sockets[user] ?? [:]).compactMap { $0.key == fanout.exceptSocket ? nil : $0.value }
            }
        }
        for c in targets { offer(fanout.frame, to: c) }
    }

    @discardableResult
    private func offer(_ frame: String, to c: AsyncStream<String>.Continuation) -> Bool {
        switch c.yield(frame) {
        case .enqueued: return true
        case .dropped:
            c.finish()
            return false
        case .terminated: return false
        @unknown default: return false
        }
    }

    public var openSockets: Int { lock.withLock { total } }

    /// Ends every queue (graceful shutdown): the socket handlers then close with 1001.
    public func closeAll() {
        let all = lock.withLock { sockets.values.flatMap { $0.values } }
        for c in all { c.finish() }
    }
}
