/// Reads a log directory forward from a seq, batch by batch, without ever writing to it.
///
/// Safe beside a running writer: it stops at a batch that is not whole yet and picks it up on
/// the next `poll`, so `replay --follow` and the server's own replay share this one path.
public final class LogCursor {
    public let directory: String
    /// The next seq this cursor will deliver.
    public private(set) var nextSeq: UInt64
    private var segment: (path: String, firstSeq: UInt64)?
    private var offset = 0
    private let decoder = LZ4FrameDecoder()
    private var rawBuffer: [UInt8] = []
    /// The hash (hex) of the header of the last batch read to its end: the chain's tip at
    /// `nextSeq - 1` when that seq ends a batch (a snapshot taken there records it).
    public private(set) var lastBatchHash = hexString(BatchHeader.zeroHash)
    /// The last seq of that batch.
    public private(set) var lastBatchEnd: UInt64 = 0
    /// Bytes read so far (compressed, as on disk) and delivered raw record bytes.
    public private(set) var bytesRead = 0
    public private(set) var rawBytesRead = 0

    public init(directory: String, from seq: UInt64 = 1) {
        self.directory = directory
        self.nextSeq = max(seq, 1)
    }

    /// Delivers every whole record from `nextSeq` up to `through` that is on disk now.
    /// `body` returns false to stop early. Returns how many records were delivered.
    @discardableResult
    public func poll(
        through: UInt64 = .max,
        _ body: (RecordHeader, UnsafeRawBufferPointer) throws -> Bool
    ) throws -> Int {
        var delivered = 0
        while nextSeq <= through {
            if segment == nil {
                guard let first = try locate() else { return delivered }
                segment = first
                offset = 0
            }
            let current = segment!
            let base = offset
            // Mapped, not read: a rebuild streams gigabytes, and copying each segment into a fresh
            // buffer cost a quarter of the reading thread's time.
            let bytes = try FileIO.map(current.path, from: base)
            var local = 0
            var stopped = false
            let progress = try bytes.withUnsafeBytes { all -> Bool in
                var moved = false
                defer { offset = base + local }
                while local < all.count, nextSeq <= through, !stopped {
                    let rest = UnsafeRawBufferPointer(rebasing: all[local...])
                    let header: BatchHeader
                    switch BatchHeader.decode(rest) {
                    case let .failure(fault):
                        if case .truncated = fault { return moved }
                        throw EventLogError.corrupt(file: current.path, offset: base + local, reason: fault.reason)
                    case let .success(h): header = h
                    }
                    let batch = FoundBatch(header: header, offset: local)
                    if batch.end > all.count { return moved }
                    if header.lastSeq < nextSeq {
                        local = batch.end
                        moved = true
                        continue
                    }
                    if header.firstSeq > nextSeq {
                        throw EventLogError.corrupt(file: current.path, offset: base + local,
                                                    reason: "batch starts at seq \(header.firstSeq), expected \(nextSeq)")
                    }
                    if let why = BatchWalk.decompress(batch, in: all, decoder: decoder, buffer: &rawBuffer, hashRecords: false) {
                        throw EventLogError.corrupt(file: current.path, offset: base + local, reason: why)
                    }
                    bytesRead += batch.end - batch.offset
                    rawBytesRead += Int(header.rawLength)
                    try rawBuffer.withUnsafeBytes { raw in
                        let records = UnsafeRawBufferPointer(rebasing: raw[0..<Int(header.rawLength)])
                        _ = try RecordLayout.forEach(in: records) { h, payload in
                            guard h.seq >= nextSeq else { return true }
                            guard h.seq <= through else { return false }
                            nextSeq = h.seq + 1
                            delivered += 1
                            if try !body(h, payload) {
                                stopped = true
                                return false
                            }
                            return true
                        }
                    }
                    if nextSeq > header.lastSeq {
                        local = batch.end
                        lastBatchHash = hexString(header.headerHash)
                        lastBatchEnd = header.lastSeq
                    }
                    moved = true
                }
                return moved
            }
            if stopped || nextSeq > through { return delivered }
            if local < bytes.count && !progress {
                // A batch is not whole yet: the writer is mid-write (or the tail is torn).
                if try nextSegment(after: current) != nil {
                    throw EventLogError.corrupt(file: current.path, offset: offset, reason: "incomplete batch in a sealed segment")
                }
                return delivered
            }
            if local >= bytes.count {
                guard let next = try nextSegment(after: current) else { return delivered }
                if next.firstSeq != nextSeq {
                    throw EventLogError.gap(file: next.path, expected: nextSeq, found: next.firstSeq)
                }
                segment = next
                offset = 0
            }
        }
        return delivered
    }

    /// The segment holding `nextSeq`: the last one whose first seq is not after it.
    private func locate() throws -> (path: String, firstSeq: UInt64)? {
        let all = try Segments.list(directory)
        guard let first = all.first else { return nil }
        if first.firstSeq > nextSeq {
            throw EventLogError.gap(file: first.path, expected: nextSeq, found: first.firstSeq)
        }
        return all.last { $0.firstSeq <= nextSeq }
    }

    private func nextSegment(after current: (path: String, firstSeq: UInt64)) throws -> (path: String, firstSeq: UInt64)? {
        try Segments.list(directory).first { $0.firstSeq > current.firstSeq }
    }
}
