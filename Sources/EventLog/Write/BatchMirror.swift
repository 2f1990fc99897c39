/// One batch exactly as the file store writes it (the skippable header frame, then the LZ4
/// frame of its records), with the chain facts a second store keys it by.
public struct StoredBatch: Sendable, Equatable {
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// The previous batch's header hash (32 zero bytes before the first batch).
    public var prevHash: [UInt8]
    public var headerHash: [UInt8]
    public var bytes: [UInt8]

    public init(firstSeq: UInt64, lastSeq: UInt64, prevHash: [UInt8], headerHash: [UInt8], bytes: [UInt8]) {
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.prevHash = prevHash
        self.headerHash = headerHash
        self.bytes = bytes
    }
}

/// A store that holds the log's batches durably in place of the local `fsync` (PostgreSQL): the
/// writer calls `store` on its own thread after writing a batch to the local segments, and
/// acknowledges the batch's appenders only once it returns.
public protocol BatchMirror: AnyObject, Sendable {
    /// Returns once `batch` is durably stored right after `batch.prevHash`. Waits out an outage
    /// of the store; throws only when the batch can never be stored (another writer took the
    /// position), which stops the writer for good.
    func store(_ batch: StoredBatch) throws
}
