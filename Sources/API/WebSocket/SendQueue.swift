import Foundation

/// Sends a socket has read and the Ledger has not decided yet. The socket's reader adds to it
/// and reads on; the socket's one submitter takes everything queued and hands it to the
/// Ledger in one call. A burst of frames is then decided together, in order: one actor hop
/// instead of one per frame, and its acks and deliveries land in the same durable batch,
/// where they share writes (one socket's frames are no longer interleaved with every other
/// socket's). At `limit` queued sends the reader waits, so a fast client is held back by TCP.
final class SendQueue<Item: Sendable>: @unchecked Sendable {
    static var limit: Int { 256 }

    private let lock = NSLock()
    private var items: [Item] = []
    /// The submitter holds a batch it took and has not finished.
    private var busy = false
    /// The submitter is gone: nothing more will be decided, so nobody may wait for it.
    private var stopped = false
    private var spaceWaiter: CheckedContinuation<Void, Never>?
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private let signal: AsyncStream<Void>.Continuation
    /// Wakes the submitter: something was added (or, finished, the socket is done).
    let signals: AsyncStream<Void>

    init() {
        (signals, signal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `item`; waits while the queue is full.
    func add(_ item: Item) async {
        let full: Bool = lock.withLock {
            guard !stopped else { return false }
            items.append(item)
            return items.count >= Self.limit
        }
        signal.yield()
        guard full else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let wait: Bool = lock.withLock {
                guard items.count >= Self.limit, !stopped else { return false }
                spaceWaiter = continuation
                return true
            }
            if !wait { continuation.resume() }
        }
    }

    /// Everything queued, in order; empty when there is nothing (the submitter is then idle).
    func take() -> [Item] {
        let (batch, space, idle): ([Item], CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) = lock.withLock {
            let batch = items
            items.removeAll(keepingCapacity: true)
            busy = !batch.isEmpty
            defer {
                spaceWaiter = nil
                if !busy { idleWaiters.removeAll() }
            }
            return (batch, spaceWaiter, busy ? [] : idleWaiters)
        }
        space?.resume()
        for waiter in idle { waiter.resume() }
        return batch
    }

    /// Returns once every send added so far has been decided.
    func idle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let wait: Bool = lock.withLock {
                guard busy || !items.isEmpty, !stopped else { return false }
                idleWaiters.append(continuation)
                return true
            }
            if !wait { continuation.resume() }
        }
    }

    /// No more adds: the submitter decides what is left, then ends.
    func finish() { signal.finish() }

    /// The submitter has ended (normally, or cancelled with sends left undecided): wakes
    /// every waiter, and later adds and waits return at once.
    func stop() {
        let (space, idle): (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) = lock.withLock {
            stopped = true
            items.removeAll()
            defer {
                spaceWaiter = nil
                idleWaiters.removeAll()
            }
            return (spaceWaiter, idleWaiters)
        }
        space?.resume()
        for waiter in idle { waiter.resume() }
    }
}
