import Foundation

/// The segment the writer appends to.
struct ActiveSegment {
    var fd: Int32
    var path: String
    var size: Int
    var segment: UInt32
    /// Set when written data awaits an `interval` sync.
    var unsyncedSince: Date?
    var lastSync = Date()
}

/// Open-time validation: sealed segments by their headers, the last segment's tail in full,
/// truncating a torn or corrupt tail and refusing damage anywhere else.
enum LogRecovery {
    struct Opened {
        var index: BatchIndex
        var active: ActiveSegment
        var lastSeq: UInt64
        var headHash: [UInt8]
        var report: RecoveryReport
    }

    static func open(directory: String) throws -> Opened {
        var segments = try Segments.list(directory)
        if segments.isEmpty {
            let path = directory + "/" + Segments.fileName(firstSeq: 1)
            let fd = Foundation.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw EventLogError.io(FileIO.errnoText("create \(path)")) }
            close(fd)
            FileIO.syncDirectory(directory)
            segments = [(path, 1)]
        }
        var index = BatchIndex()
        var report = RecoveryReport()
        var expected: UInt64 = 1
        var prev = BatchHeader.zeroHash
        var activeSize = 0
        for (i, segment) in segments.enumerated() {
            let isLast = i == segments.count - 1
            if segment.firstSeq != expected {
                throw EventLogError.gap(file: segment.path, expected: expected, found: segment.firstSeq)
            }
            // Mapped: the walk reads only each batch's header (and the last batch whole), so a
            // start touches a page per batch instead of copying every segment.
            let bytes = try FileIO.map(segment.path, from: 0)
            var (found, fault) = bytes.withUnsafeBytes {
                BatchWalk.headers($0, expectedSeq: expected, prevHash: prev)
            }
            var keep = bytes.count
            if let fault {
                guard isLast else {
                    throw EventLogError.corrupt(file: segment.path, offset: fault.offset, reason: fault.reason)
                }
                let laterBatch = bytes.withUnsafeBytes { BatchWalk.validHeaderExists($0, after: fault.offset) }
                if laterBatch {
                    throw EventLogError.corrupt(file: segment.path, offset: fault.offset,
                                                reason: fault.reason + " (valid batches follow: not a torn tail)")
                }
                keep = fault.offset
                report = RecoveryReport(droppedBytes: bytes.count - keep,
                                        droppedSeqs: fault.header.map { $0.firstSeq...$0.lastSeq },
                                        file: segment.path, reason: fault.reason)
            }
            if isLast, let last = found.last {
                let decoder = LZ4FrameDecoder()
                var buffer: [UInt8] = []
                let why = bytes.withUnsafeBytes {
                    BatchWalk.decompress(last, in: $0, decoder: decoder, buffer: &buffer, hashRecords: true)
                }
                if let why {
                    found.removeLast()
                    report = RecoveryReport(droppedBytes: bytes.count - last.offset,
                                            droppedSeqs: last.header.firstSeq...last.header.lastSeq,
                                            file: segment.path, reason: why)
                    keep = last.offset
                }
            }
            if !isLast && found.isEmpty {
                throw EventLogError.corrupt(file: segment.path, offset: 0, reason: "sealed segment holds no batch")
            }
            if keep < bytes.count {
                guard truncate(segment.path, off_t(keep)) == 0 else {
                    throw EventLogError.io(FileIO.errnoText("truncate \(segment.path)"))
                }
            }
            index.segments.append(segment.path)
            for batch in found {
                index.batches.append(BatchLocation(
                    firstSeq: batch.header.firstSeq, count: batch.header.count, segment: UInt32(i),
                    offset: UInt64(batch.offset), frameLength: batch.header.frameLength,
                    rawLength: batch.header.rawLength))
            }
            if let last = found.last {
                expected = last.header.lastSeq + 1
                prev = last.header.headerHash
            }
            activeSize = keep
        }
        let path = segments[segments.count - 1].path
        let fd = Foundation.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw EventLogError.io(FileIO.errnoText("open \(path)")) }
        if !report.isClean { try FileIO.sync(fd, path: path) }
        let active = ActiveSegment(fd: fd, path: path, size: activeSize, segment: UInt32(segments.count - 1))
        return Opened(index: index, active: active, lastSeq: expected - 1, headHash: prev, report: report)
    }
}
