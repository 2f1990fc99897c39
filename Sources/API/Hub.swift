import Foundation
import NIOCore

/// Open sockets by user. Frames for many sockets are grouped by event loop and written with
/// one hop per loop; each socket bounds its own backlog (see `SocketOutbox`), so a slow reader
/// is closed (1008) instead of stalling everyone else's delivery.
public final class Hub: @unchecked Sendable {
    private let lock = NSLock()
    private var sockets: [UInt32: [UInt64: SocketOutbox]] = [:]
    private var total = 0

    public init() {}

    func open(_ outbox: SocketOutbox) {
        lock.withLock {
            sockets[outbox.user, default: [:]][outbox.id] = outbox
            total += 1
        }
    }

    func close(_ outbox: SocketOutbox) {
        lock.withLock {
            guard sockets[outbox.user]?.removeValue(forKey: outbox.id) != nil else { return }
            if sockets[outbox.user]?.isEmpty == true { sockets[outbox.user] = nil }
            total -= 1
        }
        outbox.finish()
    }

    func deliver(_ fanout: Fanout) {
        write(lock.withLock { targets(of: fanout) })
    }

    /// Every open socket of the fan-out's users but the excepted one. Caller holds `lock`.
    private func targets(of fanout: Fanout) -> [(SocketOutbox, String)] {
        var out: [(SocketOutbox, String)] = []
        for user in fanout.users {
            for (id, outbox) in sockets[user] ?? [:] where id != fanout.exceptSocket {
                out.append((outbox, fanout.frame))
            }
        }
        return out
    }

    /// Writes each step's direct frame, then its fan-out, in order, with one hop per loop and
    /// one flush per socket.
    func write(_ steps: [(direct: (SocketOutbox, String)?, fanout: Fanout?)]) {
        var all: [(SocketOutbox, String)] = []
        all.reserveCapacity(steps.count * 2)
        lock.withLock {
            for step in steps {
                if let direct = step.direct { all.append(direct) }
                if let fanout = step.fanout { all.append(contentsOf: targets(of: fanout)) }
            }
        }
        write(all)
    }

    private func write(_ frames: [(SocketOutbox, String)]) {
        guard let first = frames.first else { return }
        if frames.allSatisfy({ $0.0.loop === first.0.loop }) { return Self.write(frames, on: first.0.loop) }
        var byLoop: [ObjectIdentifier: [(SocketOutbox, String)]] = [:]
        for item in frames { byLoop[ObjectIdentifier(item.0.loop), default: []].append(item) }
        for group in byLoop.values { Self.write(group, on: group[0].0.loop) }
    }

    private static func write(_ frames: [(SocketOutbox, String)], on loop: any EventLoop) {
        let run: @Sendable () -> Void = {
            for (outbox, frame) in frames { outbox.enqueue(frame) }
            for (outbox, _) in frames { outbox.flush() }
        }
        if loop.inEventLoop { run() } else { loop.execute(run) }
    }

    public var openSockets: Int { lock.withLock { total } }

    /// Asks every socket to close with 1001 (graceful shutdown).
    public func closeAll() {
        let all = lock.withLock { sockets.values.flatMap { $0.values } }
        for outbox in all {
            outbox.loop.execute { outbox.end(.goingAway, "server shutting down") }
        }
    }
}
