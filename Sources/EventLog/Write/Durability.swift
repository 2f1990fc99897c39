/// When an append counts as done: after fsync (`always`), after the write with an fsync at most
/// every N ms (`interval`), or after the write alone (`never`).
public enum Durability: Sendable, Equatable, CustomStringConvertible {
    case always
    case interval(milliseconds: Int)
    case never

    /// Parses `always`, `never` or `interval=<ms>`.
    public init?(parsing text: String) {
        switch text {
        case "always": self = .always
        case "never": self = .never
        default:
            guard text.hasPrefix("interval="), let ms = Int(text.dropFirst("interval=".count)), ms > 0 else {
                return nil
            }
            self = .interval(milliseconds: ms)
        }
    }

    public var description: String {
        switch self {
        case .always: return "always"
        case .never: return "never"
        case let .interval(ms): return "interval=\(ms)"
        }
    }
}

/// Tuning of an open log.
public struct EventLogOptions: Sendable {
    /// A new segment starts once the active one reaches this size.
    public var segmentBytes: Int
    public var durability: Durability
    /// Decompressed batches kept for random reads.
    public var cachedBatches: Int
    /// With `.always`: how long (µs) the writer may hold a batch open after its first record,
    /// gathering more, while records arrive fast enough to fill it (see `EventLog.gatherTarget`).
    /// 0 writes each batch as soon as the writer is free.
    public var gatherMicros: Int
    /// The store that makes batches durable when the local segments are only a cache
    /// (PostgreSQL); the local files are then synced per `durability` as before.
    public var mirror: (any BatchMirror)?

    public init(segmentBytes: Int = 64 << 20, durability: Durability = .always, cachedBatches: Int = 64,
                gatherMicros: Int = 1000, mirror: (any BatchMirror)? = nil) {
        self.segmentBytes = segmentBytes
        self.durability = durability
        self.cachedBatches = cachedBatches
        self.gatherMicros = gatherMicros
        self.mirror = mirror
    }
}

/// What recovery at open did to the tail of the last segment.
public struct RecoveryReport: Sendable, Equatable {
    /// Bytes cut from the end of the last segment (0 when the tail was whole).
    public var droppedBytes: Int = 0
    /// The seqs that were dropped with them, when their header was readable.
    public var droppedSeqs: ClosedRange<UInt64>?
    public var file: String?
    public var reason: String?

    public var isClean: Bool { droppedBytes == 0 }

    public var description: String {
        guard !isClean else { return "log tail intact" }
        var text = "truncated \(droppedBytes) bytes at the tail of \(file ?? "?")"
        if let seqs = droppedSeqs { text += " (unacknowledged seqs \(seqs.lowerBound)…\(seqs.upperBound))" }
        if let reason { text += ": \(reason)" }
        return text
    }
}
