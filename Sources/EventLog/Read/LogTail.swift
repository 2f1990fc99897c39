/// A live reader of new records: it first catches up from disk, then gets batches as they
/// become durable. The catch-up buffer keeps live batches that arrive meanwhile, in order.
struct TailSubscriber {
    var continuation: AsyncThrowingStream<Record, Error>.Continuation
    var live = false
    var buffered: [Record] = []
}

extension EventLog {
    /// Records from `seq` on, first those already durable, then each new one as it becomes durable.
    /// The stream ends when the log closes and throws if the writer fails.
    public func tail(from seq: UInt64) -> AsyncThrowingStream<Record, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Record.self, bufferingPolicy: .unbounded)
        cond.lock()
        let id = nextSubscriberId
        nextSubscriberId += 1
        let catchUpTo = durable
        subscribers[id] = TailSubscriber(continuation: continuation)
        cond.unlock()
        continuation.onTermination = { [weak self] _ in
            // Termination can fire inside a yield or finish made with `cond` held: unsubscribe later.
            Task.detached { self?.withCond { self?.subscribers[id] = nil } }
        }
        Task.detached { [self] in
            do {
                var last = seq > 0 ? seq - 1 : 0
                if seq <= catchUpTo {
                    let cursor = LogCursor(directory: self.directory, from: seq)
                    try cursor.poll(through: catchUpTo) { h, payload in
                        continuation.yield(Record(seq: h.seq, timestamp: h.timestamp, type: h.type,
                                                  version: h.version, payload: Array(payload)))
                        last = h.seq
                        return true
                    }
                }
                self.goLive(id, after: last, from: seq)
            } catch {
                continuation.finish(throwing: error)
            }
        }
        return stream
    }

    private func goLive(_ id: Int, after last: UInt64, from seq: UInt64) {
        withCond {
            guard var sub = subscribers[id] else { return }
            for record in sub.buffered where record.seq > last && record.seq >= seq {
                sub.continuation.yield(record)
            }
            sub.buffered = []
            sub.live = true
            subscribers[id] = sub
        }
    }

    /// Called by the writer with `cond` held.
    func feedSubscribers(_ batch: PendingBatch) {
        var records: [Record] = []
        records.reserveCapacity(batch.count)
        batch.raw.withUnsafeBytes { raw in
            _ = try? RecordLayout.forEach(in: raw) { h, payload in
                records.append(Record(seq: h.seq, timestamp: h.timestamp, type: h.type,
                                      version: h.version, payload: Array(payload)))
                return true
            }
        }
        feedSubscribers(records)
    }

    /// Called with `cond` held.
    func feedSubscribers(_ records: [Record]) {
        for (id, var sub) in subscribers {
            if sub.live {
                for record in records { sub.continuation.yield(record) }
            } else {
                sub.buffered.append(contentsOf: records)
                subscribers[id] = sub
            }
        }
    }

    /// Called with `cond` held.
    func finishSubscribers(throwing error: Error?) {
        for sub in subscribers.values { sub.continuation.finish(throwing: error) }
        subscribers = [:]
    }
}
