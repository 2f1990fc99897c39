import Foundation

/// What `verify` found: sizes, counts and the head digest an auditor can write down.
public struct VerifyReport: Sendable, Equatable {
    public var segments = 0
    public var batches = 0
    public var events: UInt64 = 0
    public var compressedBytes = 0
    public var rawBytes = 0
    public var headSeq: UInt64 = 0
    /// Hex SHA-256 of the last batch header: the tip of the hash chain.
    public var headHash = hexString(BatchHeader.zeroHash)

    public init() {}
}

/// Walks every segment: frame checksums, record framing, seq continuity, records hashes and
/// the hash chain. Read-only, so it runs beside a live writer.
public enum LogVerifier {
    /// Throws `EventLogError.corrupt`/`.gap` naming the file and offset of the first fault.
    /// `progress` gets the seq reached after each segment.
    public static func verify(directory: String, progress: ((UInt64) -> Void)? = nil) throws -> VerifyReport {
        var report = VerifyReport()
        let segments = try Segments.list(directory)
        var expected: UInt64 = 1
        var prev = BatchHeader.zeroHash
        let decoder = LZ4FrameDecoder()
        var buffer: [UInt8] = []
        for (i, segment) in segments.enumerated() {
            if segment.firstSeq != expected {
                throw EventLogError.gap(file: segment.path, expected: expected, found: segment.firstSeq)
            }
            var bytes = try FileIO.readAll(segment.path)
            var walk = bytes.withUnsafeBytes { BatchWalk.headers($0, expectedSeq: expected, prevHash: prev) }
            if let fault = walk.fault, fault.truncated, i == segments.count - 1 {
                // The writer may be mid-batch: look again once it had time to finish.
                Thread.sleep(forTimeInterval: 0.2)
                bytes = try FileIO.readAll(segment.path)
                walk = bytes.withUnsafeBytes { BatchWalk.headers($0, expectedSeq: expected, prevHash: prev) }
            }
            if let fault = walk.fault {
                throw EventLogError.corrupt(file: segment.path, offset: fault.offset, reason: fault.reason)
            }
            if walk.batches.isEmpty && i != segments.count - 1 {
                throw EventLogError.corrupt(file: segment.path, offset: 0, reason: "sealed segment holds no batch")
            }
            try bytes.withUnsafeBytes { all in
                for batch in walk.batches {
                    if let why = BatchWalk.decompress(batch, in: all, decoder: decoder, buffer: &buffer, hashRecords: true) {
                        throw EventLogError.corrupt(file: segment.path, offset: batch.offset, reason: why)
                    }
                    report.batches += 1
                    report.events += UInt64(batch.header.count)
                    report.rawBytes += Int(batch.header.rawLength)
                    expected = batch.header.lastSeq + 1
                    prev = batch.header.headerHash
                }
            }
            report.segments += 1
            report.compressedBytes += bytes.count
            progress?(expected - 1)
        }
        report.headSeq = expected - 1
        report.headHash = hexString(prev)
        return report
    }
}
