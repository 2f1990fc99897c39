import DequeModule
import EventLog
import Foundation

/// A record decoded ahead of the fold: a message's summary (nearly every record of a busy
/// log, and all the views need of one) or any other event.
enum DecodedRecord: Sendable {
    case message(MessageSummary, seq: UInt64, timestamp: Int64, plaintext: Bool)
    case event(Event, seq: UInt64, timestamp: Int64)
}

extension ProjectionSet {
    /// Folds the records `scan` yields after `lastSeq` on two threads: a reader thread runs
    /// the scan (reading and decompressing the log) and decodes each record; the calling
    /// thread folds them, `chunkSize` at a time. The fold is bound by memory latency (a random
    /// conversation and user per message) and the reading by decompression, so the two overlap
    /// instead of adding up. The outcome, errors included, is that of `replay(scan:asOf:progress:)`:
    /// everything before an undecodable record is folded, then its error is thrown.
    public mutating func replayInParallel(
        scan: @escaping SendableRecordScanner, asOf: AsOf? = nil, progress: ((UInt64) -> Void)? = nil
    ) throws {
        let channel = DecodedChannel()
        let after = lastSeq
        let reader = Thread {
            Thread.current.name = "chat-es replay"
            channel.produce(scan: scan, after: after, asOf: asOf)
        }
        reader.stackSize = 1 << 20
        reader.start()
        var applied = 0
        defer { channel.cancel() }
        while let chunk = channel.take() {
            for record in chunk { apply(decoded: record) }
            applied += chunk.count
            if applied >= 1 << 16 {
                applied = 0
                progress?(lastSeq)
            }
            channel.recycle(chunk)
        }
        if let failure = channel.failure { throw failure }
        progress?(lastSeq)
    }

    mutating func apply(decoded record: DecodedRecord) {
        switch record {
        case let .message(m, seq, timestamp, plaintext):
            applyMessage(m, seq: seq, timestamp: timestamp, plaintext: plaintext)
        case let .event(event, seq, timestamp):
            apply(event, seq: seq, timestamp: timestamp)
        }
    }

    /// Decodes one record the way `apply(seq:timestamp:type:version:payload:)` does, without
    /// folding it; errors name the seq.
    static func decode(_ header: RecordHeader, _ payload: UnsafeRawBufferPointer) throws -> DecodedRecord {
        do {
            if header.type == EventType.messageSent.rawValue, EventType.messageSent.readableVersions.contains(header.version) {
                let m = try MessageSummary.decode(version: header.version, payload: payload)
                return .message(m, seq: header.seq, timestamp: header.timestamp, plaintext: header.version < 3)
            }
            return .event(try Event.decode(type: header.type, version: header.version, payload: payload),
                          seq: header.seq, timestamp: header.timestamp)
        } catch let error as EventDecodingError {
            throw error.naming(seq: header.seq)
        }
    }
}

/// The hand-off between the reader thread and the fold: a few chunks in flight (so memory
/// stays bounded however far ahead the reader is), and emptied chunks sent back for reuse.
final class DecodedChannel: @unchecked Sendable {
    static let chunkSize = 4096
    static let chunksInFlight = 4

    private let condition = NSCondition()
    private var full = Deque<[DecodedRecord]>()
    private var empty: [[DecodedRecord]] = []
    private var done = false
    private var cancelled = false
    private var error: (any Error)?

    /// Why the reader stopped early, once `take` has returned nil.
    var failure: (any Error)? { condition.withLock { error } }

    /// On the reader thread: decodes every record after `after` (through `asOf`) into chunks.
    func produce(scan: RecordScanner, after: UInt64, asOf: AsOf?) {
        var chunk = fresh()
        do {
            try scan { header, payload in
                if let asOf, !asOf.includes(header) { return false }
                guard header.seq > after else { return true }
                chunk.append(try ProjectionSet.decode(header, payload))
                if chunk.count == Self.chunkSize {
                    guard put(chunk) else { return false }
                    chunk = fresh()
                }
                return true
            }
            if !chunk.isEmpty { _ = put(chunk) }
            finish(nil)
        } catch {
            if !chunk.isEmpty { _ = put(chunk) }
            finish(error)
        }
    }

    /// The next chunk, or nil once the reader is done.
    func take() -> [DecodedRecord]? {
        condition.lock()
        defer { condition.unlock() }
        while full.isEmpty && !done { condition.wait() }
        guard let chunk = full.popFirst() else { return nil }
        condition.broadcast()
        return chunk
    }

    func recycle(_ chunk: [DecodedRecord]) {
        var chunk = chunk
        chunk.removeAll(keepingCapacity: true)
        condition.withLock { if empty.count < Self.chunksInFlight { empty.append(chunk) } }
    }

    /// The fold stopped (an error, or it is done): the reader stops at its next chunk.
    func cancel() {
        condition.withLock {
            cancelled = true
            condition.broadcast()
        }
    }

    private func fresh() -> [DecodedRecord] {
        if let reused = condition.withLock({ empty.popLast() }) { return reused }
        var chunk: [DecodedRecord] = []
        chunk.reserveCapacity(Self.chunkSize)
        return chunk
    }

    /// Queues a chunk, waiting while enough are in flight; false if the fold is gone.
    private func put(_ chunk: [DecodedRecord]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while full.count >= Self.chunksInFlight && !cancelled { condition.wait() }
        guard !cancelled else { return false }
        full.append(chunk)
        condition.broadcast()
        return true
    }

    private func finish(_ error: (any Error)?) {
        condition.withLock {
            self.error = error
            done = true
            condition.broadcast()
        }
    }
}
