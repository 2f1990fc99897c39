import Crypto
import Foundation

/// The durable, ordered, segmented, LZ4-framed store of opaque records.
///
/// Appends are gathered by one writer thread into batches (group commit): each batch is
/// written as a skippable header frame plus one LZ4 frame, synced per the durability policy,
/// and only then are its appenders resumed. Seqs are assigned at `reserve`, in call order,
/// so a single decider (the Ledger) knows each record's position before it is durable.
public final class EventLog: @unchecked Sendable {
    public let directory: String
    public let options: EventLogOptions
    /// What open-time recovery did to the tail.
    public let recovery: RecoveryReport

    // Guarded by `cond`.
    let cond = NSCondition()
    var pending = PendingBatch()
    var nextSeq: UInt64
    var durable: UInt64
    var headHash: [UInt8]
    var waiters: [Waiter] = []
    var failure: String?
    var closing = false
    var writerFinished = false
    var subscribers: [Int: TailSubscriber] = [:]
    /// fsyncs done and the nanoseconds they took, for metrics.
    var syncCount: UInt64 = 0
    var syncNanos: UInt64 = 0
    /// Batches stored in the mirror (database commits) and the nanoseconds they took.
    var mirrorCount: UInt64 = 0
    var mirrorNanos: UInt64 = 0
    /// Test hook: the next write fails as if the disk reported an error.
    var injectWriteError = false
    /// Test hook: seconds each batch waits before it is written (a slow disk).
    var injectWriteDelay: Double = 0
    var nextSubscriberId = 0
    /// Told on the writer thread of each durable batch's last seq, and of a failure (nil).
    var durabilityListener: (@Sendable (UInt64?) -> Void)?
    /// What the writer is doing, so `reserve` wakes it only when that helps: always when it
    /// is idle, when a gathered batch is full, and never while it writes (it looks again
    /// when done). Each needless wake-up is a futex call and a context switch.
    var writerState = WriterState.busy
    /// Records per second arriving, smoothed over batches (the writer's estimate).
    var arrivalRate: Double = 0
    var lastTakeNanos: UInt64 = 0

    // Touched by the writer thread only (and by `open` before it starts).
    var writer: ActiveSegment

    // Guarded by `indexLock`.
    let indexLock = NSLock()
    var index: BatchIndex

    private init(directory: String, options: EventLogOptions, recovery: RecoveryReport,
                 index: BatchIndex, writer: ActiveSegment, lastSeq: UInt64, headHash: [UInt8]) {
        self.directory = directory
        self.options = options
        self.recovery = recovery
        self.index = index
        self.writer = writer
        self.nextSeq = lastSeq + 1
        self.durable = lastSeq
        self.headHash = headHash
    }

    /// Opens (creating if needed) the log in `directory`, recovering a torn tail.
    /// Throws when a sealed segment is damaged or a segment is missing.
    public static func open(directory: String, options: EventLogOptions = EventLogOptions()) throws -> EventLog {
        try FileIO.makeDirectory(directory)
        let opened = try LogRecovery.open(directory: directory)
        let log = EventLog(directory: directory, options: options, recovery: opened.report,
                           index: opened.index, writer: opened.active, lastSeq: opened.lastSeq,
                           headHash: opened.headHash)
        let thread = Thread {
            // Set from inside: on Linux a name given before start never reaches the kernel,
            // and `top -H` would show the creating pool thread's name instead.
            Thread.current.name = "chat-es log"
            log.writerLoop()
        }
        thread.start()
        return log
    }

    /// The last seq that is durable (per the policy) and readable.
    public var durableSeq: UInt64 {
        cond.lock()
        defer { cond.unlock() }
        return durable
    }

    /// The seq the next reserved record will get.
    public var nextAssignedSeq: UInt64 {
        cond.lock()
        defer { cond.unlock() }
        return nextSeq
    }

    /// The durable head: its seq and the hash of its batch header (the chain's tip).
    public var head: (seq: UInt64, hash: String) {
        cond.lock()
        defer { cond.unlock() }
        return (durable, hexString(headHash))
    }

    /// How many fsyncs the writer made and their total time in seconds.
    public var syncStatistics: (count: UInt64, seconds: Double) {
        withCond { (syncCount, Double(syncNanos) / 1e9) }
    }

    /// How many batches the mirror stored (database commits) and their total time in seconds,
    /// outages waited out included.
    public var mirrorStatistics: (count: UInt64, seconds: Double) {
        withCond { (mirrorCount, Double(mirrorNanos) / 1e9) }
    }

    /// Why the writer stopped, if it did: from then on nothing more is acknowledged.
    public var failureReason: String? {
        cond.lock()
        defer { cond.unlock() }
        return failure
    }

    /// Assigns seqs to `records` and queues them for the next batch. Never blocks on I/O;
    /// call `waitUntilDurable` with the returned upper bound before acknowledging.
    @discardableResult
    public func reserve(_ records: [NewRecord]) throws -> ClosedRange<UInt64> {
        precondition(!records.isEmpty, "reserve needs at least one record")
        cond.lock()
        defer { cond.unlock() }
        if let failure { throw EventLogError.writerFailed(failure) }
        if closing { throw EventLogError.closed }
        let first = nextSeq
        if pending.isEmpty { pending.firstArrivalNanos = DispatchTime.now().uptimeNanoseconds }
        for record in records {
            pending.add(record, seq: nextSeq)
            nextSeq += 1
        }
        switch writerState {
        case .idle: cond.signal()
        case let .gathering(target): if pending.count >= target { cond.signal() }
        case .busy: break
        }
        return first...(nextSeq - 1)
    }

    /// Returns once every record up to `seq` is durable; throws if the writer failed first.
    public func waitUntilDurable(_ seq: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            cond.lock()
            if durable >= seq {
                cond.unlock()
                continuation.resume()
            } else if let failure {
                cond.unlock()
                continuation.resume(throwing: EventLogError.writerFailed(failure))
            } else {
                waiters.append(Waiter(seq: seq, continuation: continuation))
                cond.unlock()
            }
        }
    }

    /// Calls `listener` on the writer thread with the last seq of every batch that becomes
    /// durable from now on, and with nil once if the writer fails. One callback per batch lets a
    /// server release everything a batch made durable at once instead of one wake-up per record;
    /// the listener must be quick, it runs before the next batch is written.
    public func onDurable(_ listener: @escaping @Sendable (UInt64?) -> Void) {
        withCond { durabilityListener = listener }
    }

    /// Appends `records` as one unit and returns their seqs once they are durable.
    @discardableResult
    public func append(_ records: [NewRecord]) async throws -> ClosedRange<UInt64> {
        let seqs = try reserve(records)
        try await waitUntilDurable(seqs.upperBound)
        return seqs
    }

    @discardableResult
    public func append(_ record: NewRecord) async throws -> UInt64 {
        try await append([record]).lowerBound
    }

    /// Calls `body` for each durable record from `seq` on, in order; `body` returns false to stop.
    public func scan(from seq: UInt64 = 1, _ body: (RecordHeader, UnsafeRawBufferPointer) throws -> Bool) throws {
        let cursor = LogCursor(directory: directory, from: seq)
        try cursor.poll(through: durableSeq, body)
    }

    /// Stops accepting appends, writes and syncs what is queued, and stops the writer.
    public func close() async {
        withCond {
            closing = true
            cond.broadcast()
        }
        while !withCond({ writerFinished }) {
            try? await Task.sleep(nanoseconds: 1_000_000)
        }
        indexLock.withLock { index.closeReaders() }
    }

    func withCond<T>(_ body: () throws -> T) rethrows -> T {
        cond.lock()
        defer { cond.unlock() }
        return try body()
    }
}

/// What the writer thread is doing (see `EventLog.writerState`).
enum WriterState {
    /// Waiting for a first record.
    case idle
    /// Holding a batch open until it has this many records (or its time is up).
    case gathering(Int)
    /// Writing and syncing.
    case busy
}

/// Records reserved but not yet written: the next batch.
struct PendingBatch {
    var raw: [UInt8] = []
    var firstSeq: UInt64 = 0
    var count = 0
    var firstTimestamp: Int64 = 0
    var lastTimestamp: Int64 = 0
    /// When the first record was reserved (monotonic ns), for the gathering deadline.
    var firstArrivalNanos: UInt64 = 0

    var isEmpty: Bool { count == 0 }

    mutating func add(_ record: NewRecord, seq: UInt64) {
        if count == 0 {
            firstSeq = seq
            firstTimestamp = record.timestamp
        }
        lastTimestamp = record.timestamp
        count += 1
        RecordLayout.encode(seq, record, into: &raw)
    }
}

/// An appender waiting for its seq to become durable.
struct Waiter {
    var seq: UInt64
    var continuation: CheckedContinuation<Void, Error>
}
