import EventLog

/// How far an "as of" replay goes: through a seq, or through a time (inclusive).
public enum AsOf: Sendable, Equatable {
    case seq(UInt64)
    /// Microseconds; replay stops at the first record stamped later than this.
    case time(Int64)

    func includes(_ header: RecordHeader) -> Bool {
        switch self {
        case .seq(let last): header.seq <= last
        case .time(let last): header.timestamp <= last
        }
    }
}

/// The shape of `EventLog.scan(from:_:)` with its start already chosen: it calls the
/// body for each record in order until the body returns false.
public typealias RecordScanner = ((RecordHeader, UnsafeRawBufferPointer) throws -> Bool) throws -> Void

/// A `RecordScanner` that may run on another thread (the reader of `replayInParallel`).
public typealias SendableRecordScanner = @Sendable ((RecordHeader, UnsafeRawBufferPointer) throws -> Bool) throws -> Void

extension ProjectionSet {
    /// Folds the records `scan` yields into a fresh set, stopping after `asOf`.
    /// `progress` gets the current seq every 65,536 records and once at the end.
    public static func rebuild(
        scan: RecordScanner, asOf: AsOf? = nil, progress: ((UInt64) -> Void)? = nil
    ) throws -> ProjectionSet {
        var set = ProjectionSet()
        try set.replay(scan: scan, asOf: asOf, progress: progress)
        return set
    }

    /// `rebuild` on two threads (`replayInParallel`): the start-up and audit path.
    public static func rebuildInParallel(
        scan: @escaping SendableRecordScanner, asOf: AsOf? = nil, progress: ((UInt64) -> Void)? = nil
    ) throws -> ProjectionSet {
        var set = ProjectionSet()
        try set.replayInParallel(scan: scan, asOf: asOf, progress: progress)
        return set
    }

    /// Folds more records into this set (e.g. the log after a snapshot's position).
    public mutating func replay(
        scan: RecordScanner, asOf: AsOf? = nil, progress: ((UInt64) -> Void)? = nil
    ) throws {
        var applied = 0
        try scan { header, payload in
            if let asOf, !asOf.includes(header) { return false }
            try self.apply(header: header, payload: payload)
            applied += 1
            if applied & 0xFFFF == 0 { progress?(header.seq) }
            return true
        }
        progress?(lastSeq)
    }
}
