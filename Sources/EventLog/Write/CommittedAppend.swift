import Foundation

/// Batches another node committed to the shared store, appended to this node's local segments
/// verbatim (its cache), while this node's own writer is idle: a node reserves seqs only while
/// it holds the write turn, and appends others' batches only while it does not.
extension EventLog {
    /// Appends `batches` as they are, each checked to continue the local chain and to be whole
    /// (header, LZ4 checksum, records hash), and makes them durable locally at once: the store
    /// already holds them. Returns their records, in order. Throws when a batch does not
    /// continue the log or this node has records of its own waiting to be written.
    public func appendCommitted(_ batches: [StoredBatch]) throws -> [Record] {
        guard !batches.isEmpty else { return [] }
        let decoder = LZ4FrameDecoder()
        var buffer: [UInt8] = []
        var records: [Record] = []
        // The writer thread waits on `cond` while idle, so holding it keeps the segment ours.
        cond.lock()
        let listener: (@Sendable (UInt64?) -> Void)?
        do {
            defer { cond.unlock() }
            if let failure { throw EventLogError.writerFailed(failure) }
            guard pending.isEmpty, nextSeq == durable + 1 else {
                throw EventLogError.io("cannot append committed batches: \(nextSeq - durable - 1) records of this node are not written yet")
            }
            for batch in batches {
                guard batch.firstSeq == durable + 1, batch.prevHash == headHash else {
                    throw EventLogError.io("batch \(batch.firstSeq)…\(batch.lastSeq) does not continue the log at seq \(durable)")
                }
                let header = try LogCache.checkedHeader(batch)
                let found = FoundBatch(header: header, offset: 0)
                let batchRecords = try batch.bytes.withUnsafeBytes { bytes -> [Record] in
                    if let why = BatchWalk.decompress(found, in: bytes, decoder: decoder, buffer: &buffer, hashRecords: true) {
                        throw EventLogError.io("stored batch \(batch.firstSeq)…\(batch.lastSeq) is damaged: \(why)")
                    }
                    var out: [Record] = []
                    out.reserveCapacity(Int(header.count))
                    try buffer.withUnsafeBytes { raw in
                        _ = try RecordLayout.forEach(in: UnsafeRawBufferPointer(rebasing: raw[0..<Int(header.rawLength)])) { h, payload in
                            out.append(Record(seq: h.seq, timestamp: h.timestamp, type: h.type, version: h.version, payload: Array(payload)))
                            return true
                        }
                    }
                    return out
                }
                if writer.size >= options.segmentBytes && writer.size > 0 { try roll(firstSeq: batch.firstSeq) }
                try batch.bytes.withUnsafeBytes { try FileIO.writeFully(writer.fd, $0, path: writer.path) }
                let offset = writer.size
                writer.size += batch.bytes.count
                indexLock.withLock {
                    index.batches.append(BatchLocation(
                        firstSeq: batch.firstSeq, count: header.count, segment: writer.segment, offset: UInt64(offset),
                        frameLength: header.frameLength, rawLength: header.rawLength))
                }
                durable = header.lastSeq
                nextSeq = durable + 1
                headHash = header.headerHash
                feedSubscribers(batchRecords)
                records.append(contentsOf: batchRecords)
            }
            listener = durabilityListener
        }
        listener?(durableSeq)
        return records
    }
}
