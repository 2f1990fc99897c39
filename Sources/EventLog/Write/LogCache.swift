import Foundation

/// Edits of a log directory whose segments are a cache of another store (PostgreSQL): reading
/// its head, cutting batches the store never took, and appending the store's batches verbatim.
/// Each runs before the directory's `EventLog` is opened (it would hold the active segment).
public enum LogCache {
    /// The last seq and its batch header hash, after open-time recovery of a torn tail.
    public static func head(directory: String) throws -> (seq: UInt64, hash: [UInt8]) {
        try FileIO.makeDirectory(directory)
        let opened = try LogRecovery.open(directory: directory)
        FileIO.closeFD(opened.active.fd)
        return (opened.lastSeq, opened.headHash)
    }

    /// The header hash of the batch that ends at `seq`, nil when no local batch ends there.
    public static func hash(directory: String, endingAt seq: UInt64) throws -> [UInt8]? {
        if seq == 0 { return BatchHeader.zeroHash }
        let opened = try LogRecovery.open(directory: directory)
        FileIO.closeFD(opened.active.fd)
        guard let at = opened.index.locate(seq), at.lastSeq == seq else { return nil }
        let bytes = try FileIO.readAll(opened.index.segments[Int(at.segment)], from: Int(at.offset),
                                       limit: BatchHeader.encodedSize)
        guard case let .success(header) = bytes.withUnsafeBytes({ BatchHeader.decode($0) }) else { return nil }
        return header.headerHash
    }

    /// Cuts the local log right after `seq`, which must end a batch (0 empties it).
    public static func cut(directory: String, after seq: UInt64) throws {
        let opened = try LogRecovery.open(directory: directory)
        FileIO.closeFD(opened.active.fd)
        guard seq < opened.lastSeq else { return }
        let segments = opened.index.segments
        var keepSegments = 0
        if seq > 0 {
            guard let at = opened.index.locate(seq), at.lastSeq == seq else {
                throw EventLogError.io("cannot cut \(directory) after seq \(seq): no batch ends there")
            }
            let path = segments[Int(at.segment)]
            let end = off_t(Int(at.offset) + BatchHeader.encodedSize + Int(at.frameLength))
            guard truncate(path, end) == 0 else { throw EventLogError.io(FileIO.errnoText("truncate \(path)")) }
            let fd = Foundation.open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw EventLogError.io(FileIO.errnoText("open \(path)")) }
            defer { FileIO.closeFD(fd) }
            try FileIO.sync(fd, path: path)
            keepSegments = Int(at.segment) + 1
        }
        // Newest first, so a crash midway leaves a log without a gap.
        for path in segments[keepSegments...].reversed() where unlink(path) != 0 {
            throw EventLogError.io(FileIO.errnoText("remove \(path)"))
        }
        FileIO.syncDirectory(directory)
    }

    /// Appends `batches` as they are, each checked to continue the local chain, rolling segments
    /// at `segmentBytes`, and syncs them.
    public static func append(directory: String, batches: [StoredBatch], segmentBytes: Int = 64 << 20) throws {
        guard !batches.isEmpty else { return }
        let appender = try Appender(directory: directory, segmentBytes: segmentBytes)
        defer { appender.close() }
        try appender.append(batches)
    }

    /// Appends pages of another store's batches to a directory opened once: a fetch of many
    /// pages walks the directory's batch headers once, not once per page (which made fetching
    /// a long log quadratic in its batches).
    public final class Appender {
        private let directory: String
        private let segmentBytes: Int
        private var active: ActiveSegment
        private var closed = false
        /// The last seq and its batch header hash written so far.
        public private(set) var head: (seq: UInt64, hash: [UInt8])

        public init(directory: String, segmentBytes: Int = 64 << 20) throws {
            let opened = try LogRecovery.open(directory: directory)
            self.directory = directory
            self.segmentBytes = segmentBytes
            active = opened.active
            head = (opened.lastSeq, opened.headHash)
        }

        deinit { close() }

        /// Appends `batches`, each checked to continue the chain, and syncs them: once this
        /// returns, they survive a crash.
        public func append(_ batches: [StoredBatch]) throws {
            precondition(!closed, "append after close")
            for batch in batches {
                guard batch.firstSeq == head.seq + 1, batch.prevHash == head.hash else {
                    throw EventLogError.io("batch \(batch.firstSeq)…\(batch.lastSeq) does not continue the log at seq \(head.seq)")
                }
                let header = try checkedHeader(batch)
                if active.size >= segmentBytes && active.size > 0 { try roll(firstSeq: batch.firstSeq) }
                try batch.bytes.withUnsafeBytes { try FileIO.writeFully(active.fd, $0, path: active.path) }
                active.size += batch.bytes.count
                head = (header.lastSeq, header.headerHash)
            }
            try FileIO.sync(active.fd, path: active.path)
        }

        private func roll(firstSeq: UInt64) throws {
            try FileIO.sync(active.fd, path: active.path)
            FileIO.closeFD(active.fd)
            let path = directory + "/" + Segments.fileName(firstSeq: firstSeq)
            let fd = Foundation.open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                closed = true  // the old descriptor is closed already
                throw EventLogError.io(FileIO.errnoText("create \(path)"))
            }
            FileIO.syncDirectory(directory)
            active = ActiveSegment(fd: fd, path: path, size: 0, segment: active.segment + 1)
        }

        /// Closes the active segment; later appends are a bug.
        public func close() {
            guard !closed else { return }
            closed = true
            FileIO.closeFD(active.fd)
        }
    }

    /// The header of `batch.bytes`, checked against the facts it is stored under; the records
    /// themselves are checked by `verify` and by the decoder when they are read.
    static func checkedHeader(_ batch: StoredBatch) throws -> BatchHeader {
        guard batch.bytes.count >= BatchHeader.encodedSize,
              case let .success(header) = batch.bytes.withUnsafeBytes({ BatchHeader.decode($0) }),
              header.firstSeq == batch.firstSeq, header.lastSeq == batch.lastSeq,
              header.prevHash == batch.prevHash, header.headerHash == batch.headerHash,
              batch.bytes.count == BatchHeader.encodedSize + Int(header.frameLength)
        else {
            throw EventLogError.io("stored batch \(batch.firstSeq)…\(batch.lastSeq) is damaged: its header does not match")
        }
        return header
    }
}
