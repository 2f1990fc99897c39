import EventLog
import Foundation
import DequeModule
import HeapModule

/// What goes out once an event is durable: an answer to one socket (an ack, or an
/// `unavailable` error carrying `clientId` if the log failed first) and a fan-out to others.
struct Delivery: Sendable {
    var reply: (outbox: SocketOutbox, frame: WireFrame, clientId: String?)?
    var fanout: Fanout?
    /// Counted as a stored message in the metrics once durable.
    var storesMessage = false
    /// When the append was registered, for the append-latency metric; nil where the caller
    /// times the append itself (an HTTP answer waits in `ChatService.durable`).
    var registeredAt: UInt64?
}

/// Holds deliveries until the log reports their seq durable, then releases every one a batch
/// made durable at once, from the log's writer thread: one hop per event loop per batch
/// instead of a task and a wake-up per message.
final class DurableDeliveries: @unchecked Sendable {
    /// Pending deliveries ordered by seq, then by arrival (`order`).
    private struct Pending: Comparable {
        var seq: UInt64
        var order: UInt64
        var delivery: Delivery

        static func < (a: Pending, b: Pending) -> Bool { (a.seq, a.order) < (b.seq, b.order) }
        static func == (a: Pending, b: Pending) -> Bool { (a.seq, a.order) == (b.seq, b.order) }
    }

    private let lock = NSLock()
    /// Held from taking a batch's deliveries until they are handed to the hub, and by a
    /// registration that finds its seq already durable: so such a latecomer cannot overtake
    /// an earlier message's frames to the same socket. Always taken before `lock`.
    private let handOff = NSLock()
    /// Registrations come from the Ledger in seq order, so nearly all of them queue here in
    /// O(1); a registration older than the newest (a duplicate's ack) goes to `behind`.
    private var pending = Deque<Pending>()
    private var behind = Heap<Pending>()
    private var durable: UInt64
    private var failed = false
    private var arrivals: UInt64 = 0
    private let hub: Hub
    private let metrics: ServiceMetrics

    init(log: EventLog, hub: Hub, metrics: ServiceMetrics) {
        self.hub = hub
        self.metrics = metrics
        durable = log.durableSeq
        log.onDurable { [weak self] seq in self?.released(through: seq) }
        // A batch may have become durable between reading durableSeq and registering.
        released(through: log.durableSeq)
    }

    /// Sends `delivery` once `seq` is durable (at once if it already is).
    func after(_ seq: UInt64, _ delivery: Delivery) {
        let now: Bool? = lock.withLock {
            if failed { return false }
            if seq <= durable { return true }
            arrivals += 1
            let entry = Pending(seq: seq, order: arrivals, delivery: delivery)
            if let newest = pending.last, seq < newest.seq { behind.insert(entry) } else { pending.append(entry) }
            return nil
        }
        switch now {
        case true?: handOff.withLock { send([delivery]) }
        case false?: handOff.withLock { fail([delivery]) }
        case nil: break
        }
    }

    /// The log's report: everything through `seq` is durable, or (nil) the writer failed.
    private func released(through seq: UInt64?) {
        handOff.lock()
        defer { handOff.unlock() }
        var ready: [Delivery] = []
        let failedNow: Bool = lock.withLock {
            guard let seq else {
                failed = true
                while let next = popOldest(through: .max) { ready.append(next.delivery) }
                return true
            }
            durable = max(durable, seq)
            while let next = popOldest(through: durable) { ready.append(next.delivery) }
            return false
        }
        if failedNow { fail(ready) } else { send(ready) }
    }

    /// The oldest pending registration if its seq is at most `seq`. Caller holds `lock`.
    private func popOldest(through seq: UInt64) -> Pending? {
        let first = pending.first, lagging = behind.min
        if let lagging, lagging.seq <= seq, first.map({ lagging < $0 }) ?? true { return behind.removeMin() }
        if let first, first.seq <= seq { return pending.removeFirst() }
        return nil
    }

    private func send(_ deliveries: [Delivery]) {
        guard !deliveries.isEmpty else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        for d in deliveries {
            if d.storesMessage { metrics.messages.increment() }
            if let registeredAt = d.registeredAt { metrics.appendLatency(now - registeredAt) }
        }
        hub.write(deliveries.map { d in (d.reply.map { ($0.outbox, $0.frame) }, d.fanout) })
    }

    private func fail(_ deliveries: [Delivery]) {
        hub.write(deliveries.map { d in
            (d.reply.map { ($0.outbox, WireFrame(FrameError.notStored(clientId: $0.clientId).frame)) }, nil)
        })
    }
}
