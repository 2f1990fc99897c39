import Foundation

// Small synchronisation primitives for `chat-es loadgen`.
//
// The hot path (one ack or delivery per frame, tens of thousands a second on a
// 2-core box shared with the server under test) must stay cheap, so these are
// plain locks and continuations rather than actors: a frame costs one
// uncontended lock, not an executor hop.

/// A value guarded by a lock, shareable across tasks.
final class LoadgenLocked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access; keep it short and never `await` inside.
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// A one-shot gate: tasks wait until it opens, then all get the same value.
///
/// Not cancellation-aware on purpose: every gate of a run is opened by the
/// orchestrator on all paths, so a waiter never outlives the run.
final class LoadgenGate<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value?
    private var waiters: [CheckedContinuation<Value, Never>] = []

    var isOpen: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value != nil
    }

    func wait() async -> Value {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let value {
                lock.unlock()
                continuation.resume(returning: value)
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
        }
    }

    /// Opens the gate; later calls are ignored (the first value wins).
    func open(_ newValue: Value) {
        lock.lock()
        guard value == nil else {
            lock.unlock()
            return
        }
        value = newValue
        let toResume = waiters
        waiters = []
        lock.unlock()
        for waiter in toResume { waiter.resume(returning: newValue) }
    }
}

/// A counting semaphore with a close switch: bounds un-acked frames per socket
/// (and connects in flight). `close()` wakes every waiter with `false`, so a
/// sender blocked on a full window stops when the run ends.
final class LoadgenWindow: @unchecked Sendable {
    private let lock = NSLock()
    private var available: Int
    private var closed = false
    private var waiters: [CheckedContinuation<Bool, Never>] = []

    init(permits: Int) {
        available = permits
    }

    /// Takes a permit; `false` once the window is closed.
    func acquire() async -> Bool {
        await withCheckedContinuation { continuation in
            lock.lock()
            if closed {
                lock.unlock()
                continuation.resume(returning: false)
            } else if available > 0 {
                available -= 1
                lock.unlock()
                continuation.resume(returning: true)
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
        }
    }

    /// Returns a permit, handing it straight to the oldest waiter if any.
    func release() {
        lock.lock()
        if !closed, !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            lock.unlock()
            waiter.resume(returning: true)
        } else {
            available += 1
            lock.unlock()
        }
    }

    func close() {
        lock.lock()
        closed = true
        let toResume = waiters
        waiters = []
        lock.unlock()
        for waiter in toResume { waiter.resume(returning: false) }
    }
}

/// Monotonic nanoseconds since the first use in this process.
///
/// Sender and receiver sockets live in the same process, so a send time written
/// into the message text can be compared with the delivery time on the receiver.
enum LoadgenClock {
    private static let origin = ContinuousClock.now

    static func nanos() -> UInt64 {
        nanos(at: ContinuousClock.now)
    }

    static func nanos(at instant: ContinuousClock.Instant) -> UInt64 {
        let origin = origin  // initialised on first use, possibly after `instant` was taken
        guard instant > origin else { return 0 }
        let parts = (instant - origin).components
        return UInt64(parts.seconds) * 1_000_000_000 + UInt64(parts.attoseconds / 1_000_000_000)
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let parts = duration.components
        return parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
