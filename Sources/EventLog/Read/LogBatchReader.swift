import Foundation

/// Reads a log directory's batches verbatim, in order, without opening the log: nothing is
/// truncated or repaired, so it may read a log that a live server appends to (a torn or
/// half-written tail simply ends the walk). The copy to and from PostgreSQL pages with it.
public final class LogBatchReader {
    private let directory: String
    private var segments: [(path: String, firstSeq: UInt64)]?
    private var segment = 0
    private var offset = 0
    private var expected: UInt64 = 1
    private var prev = BatchHeader.zeroHash

    public init(directory: String) {
        self.directory = directory
    }

    /// The header hash of the last batch read (32 zero bytes before the first).
    public var lastHash: [UInt8] { prev }
    /// The last seq read.
    public var lastSeq: UInt64 { expected - 1 }

    /// Up to `limit` next batches; empty at the end of what is durable on disk now.
    public func next(limit: Int) throws -> [StoredBatch] {
        if segments == nil { segments = try Segments.list(directory) }
        guard let segments else { return [] }
        var out: [StoredBatch] = []
        while out.count < limit && segment < segments.count {
            let (path, firstSeq) = segments[segment]
            if offset == 0 && firstSeq != expected {
                throw EventLogError.gap(file: path, expected: expected, found: firstSeq)
            }
            let bytes = try FileIO.map(path, from: 0)
            let isLast = segment == segments.count - 1
            let (found, fault) = bytes.withUnsafeBytes {
                // Only as far as this page needs: walking the rest of the segment for every
                // page made a copy quadratic in the batches of a segment.
                BatchWalk.headers($0, from: offset, expectedSeq: expected, prevHash: prev, limit: limit - out.count)
            }
            if let fault, !isLast {
                throw EventLogError.corrupt(file: path, offset: fault.offset, reason: fault.reason)
            }
            for batch in found {
                let body = bytes.withUnsafeBytes { Array($0[batch.offset..<batch.end]) }
                out.append(StoredBatch(firstSeq: batch.header.firstSeq, lastSeq: batch.header.lastSeq,
                                       prevHash: batch.header.prevHash, headerHash: batch.header.headerHash,
                                       bytes: body))
                offset = batch.end
                expected = batch.header.lastSeq + 1
                prev = batch.header.headerHash
            }
            if out.count >= limit { break }
            if isLast { break }
            segment += 1
            offset = 0
        }
        return out
    }
}
