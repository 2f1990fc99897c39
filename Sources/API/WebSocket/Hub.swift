import Foundation
import NIOCore
import Projections

/// Open sockets by user. Frames for many sockets are grouped by event loop and written with
/// one hop per loop; each socket bounds its own backlog (see `SocketOutbox`), so a slow reader
/// is closed (1008) instead of stalling everyone else's delivery.
public final class Hub: @unchecked Sendable {
    private let lock = NSLock()
    private var sockets: [UInt32: [UInt64: SocketOutbox]] = [:]
    private var bySession: [TokenID: [UInt64: SocketOutbox]] = [:]
    private var total = 0
    private var writers: [ObjectIdentifier: LoopWriter] = [:]

    public init() {}

    func open(_ outbox: SocketOutbox) {
        lock.withLock {
            sockets[outbox.user, default: [:]][outbox.id] = outbox
            bySession[outbox.session, default: [:]][outbox.id] = outbox
            total += 1
        }
    }

    func close(_ outbox: SocketOutbox) {
        lock.withLock {
            guard sockets[outbox.user]?.removeValue(forKey: outbox.id) != nil else { return }
            if sockets[outbox.user]?.isEmpty == true { sockets[outbox.user] = nil }
            bySession[outbox.session]?.removeValue(forKey: outbox.id)
            if bySession[outbox.session]?.isEmpty == true { bySession[outbox.session] = nil }
            total -= 1
        }
        outbox.finish()
    }

    /// Silences every socket of these sessions and closes them with 4401. The Ledger calls this
    /// when it decides the end, before any later frame can be handed to the hub.
    func endSessions(_ ids: [TokenID]) {
        guard !ids.isEmpty else { return }
        let ended = lock.withLock { ids.flatMap { (bySession[$0] ?? [:]).values } }
        for outbox in ended { outbox.sessionEnded() }
    }

    func deliver(_ fanout: Fanout) {
        write(lock.withLock { targets(of: fanout) })
    }

    /// Every open socket of the fan-out's users but the excepted one. Caller holds `lock`.
    private func targets(of fanout: Fanout) -> [(SocketOutbox, WireFrame)] {
        var out: [(SocketOutbox, WireFrame)] = []
        for user in fanout.users {
            for (id, outbox) in sockets[user] ?? [:] where id != fanout.exceptSocket {
                out.append((outbox, fanout.frame))
            }
        }
        return out
    }

    /// Writes each step's direct frame, then its fan-out, in order, with one hop per loop and
    /// one flush per socket.
    func write(_ steps: [(direct: (SocketOutbox, WireFrame)?, fanout: Fanout?)]) {
        var all: [(SocketOutbox, WireFrame)] = []
        all.reserveCapacity(steps.count * 2)
        lock.withLock {
            for step in steps {
                if let direct = step.direct { all.append(direct) }
                if let fanout = step.fanout { all.append(contentsOf: targets(of: fanout)) }
            }
        }
        write(all)
    }

    private func write(_ frames: [(SocketOutbox, WireFrame)]) {
        guard let first = frames.first else { return }
        if frames.allSatisfy({ $0.0.loop === first.0.loop }) { return writer(for: first.0.loop).add(frames) }
        var byLoop: [ObjectIdentifier: [(SocketOutbox, WireFrame)]] = [:]
        for item in frames { byLoop[ObjectIdentifier(item.0.loop), default: []].append(item) }
        for group in byLoop.values { writer(for: group[0].0.loop).add(group) }
    }

    private func writer(for loop: any EventLoop) -> LoopWriter {
        lock.withLock {
            if let w = writers[ObjectIdentifier(loop)] { return w }
            let w = LoopWriter(loop: loop)
            writers[ObjectIdentifier(loop)] = w
            return w
        }
    }

    public var openSockets: Int { lock.withLock { total } }

    /// Asks every socket to close with 1001 (graceful shutdown).
    public func closeAll() {
        let all = lock.withLock { sockets.values.flatMap { $0.values } }
        for outbox in all { outbox.goAway() }
    }
}

/// Frames bound for the sockets of one event loop. Everything added before the loop gets to
/// run the drain goes out together, with one flush per socket: acks and deliveries of many
/// messages share a write(2) instead of costing one each.
///
/// Under load (the last drain carried `busyFrames` or more) the next drain waits until
/// `busySpacing` after the last one. With a thousand sockets each durable batch holds about
/// one frame per socket, so draining per batch would cost a write(2) per frame on both ends;
/// a millisecond of gathering lets a socket's frames share one. Light traffic, where latency
/// is what matters, still drains at once.
final class LoopWriter: @unchecked Sendable {
    static let busyFrames = 16
    static let busySpacing = TimeAmount.milliseconds(1)

    let loop: any EventLoop
    private let lock = NSLock()
    private var queued: [(SocketOutbox, WireFrame)] = []
    private var scheduled = false
    private var lastDrainFrames = 0
    private var lastDrain = NIODeadline.distantPast

    init(loop: any EventLoop) { self.loop = loop }

    func add(_ frames: [(SocketOutbox, WireFrame)]) {
        let (schedule, notBefore): (Bool, NIODeadline?) = lock.withLock {
            queued.append(contentsOf: frames)
            defer { scheduled = true }
            return (!scheduled, lastDrainFrames >= Self.busyFrames ? lastDrain + Self.busySpacing : nil)
        }
        guard schedule else { return }
        if let notBefore {
            loop.scheduleTask(deadline: notBefore) { self.drain() }
        } else {
            loop.execute { self.drain() }
        }
    }

    private func drain() {
        let frames: [(SocketOutbox, WireFrame)] = lock.withLock {
            scheduled = false
            lastDrainFrames = queued.count
            lastDrain = .now()
            defer { queued.removeAll(keepingCapacity: true) }
            return queued
        }
        for (outbox, frame) in frames { outbox.enqueue(frame) }
        for (outbox, _) in frames { outbox.flush() }
    }
}
