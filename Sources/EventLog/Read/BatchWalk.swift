import Crypto

/// A batch located in a segment's bytes.
struct FoundBatch {
    var header: BatchHeader
    /// Where the header's skippable frame starts.
    var offset: Int
    var frameStart: Int { offset + BatchHeader.encodedSize }
    var end: Int { frameStart + Int(header.frameLength) }
}

/// Where and why a walk over a segment stopped before its end.
struct WalkFault {
    var offset: Int
    var reason: String
    /// True when the bytes simply end early (a torn write), not when they are wrong.
    var truncated: Bool
    /// The header at `offset`, when it was readable.
    var header: BatchHeader?
}

/// Walking and checking the batches of one segment held in memory.
enum BatchWalk {
    /// Reads batch headers from `offset` to the end of `bytes` (at most `limit` of them), checking
    /// the seq sequence and hash chain.
    static func headers(
        _ bytes: UnsafeRawBufferPointer, from offset: Int = 0,
        expectedSeq: UInt64, prevHash: [UInt8], limit: Int = .max
    ) -> (batches: [FoundBatch], fault: WalkFault?) {
        var batches: [FoundBatch] = []
        var at = offset
        var seq = expectedSeq
        var prev = prevHash
        while at < bytes.count && batches.count < limit {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[at...])
            let header: BatchHeader
            switch BatchHeader.decode(rest) {
            case let .failure(fault):
                if case .truncated = fault, rest.count >= 4,
                   rest.loadUnaligned(as: UInt32.self).littleEndian != BatchHeader.magic {
                    return (batches, WalkFault(offset: at, reason: "no batch header magic", truncated: false))
                }
                return (batches, WalkFault(offset: at, reason: fault.reason, truncated: isTruncation(fault)))
            case let .success(h): header = h
            }
            if header.firstSeq != seq {
                return (batches, WalkFault(offset: at, reason: "batch starts at seq \(header.firstSeq), expected \(seq)", truncated: false, header: header))
            }
            if header.prevHash != prev {
                return (batches, WalkFault(offset: at, reason: "hash chain broken: previous-batch hash does not match", truncated: false, header: header))
            }
            let found = FoundBatch(header: header, offset: at)
            if found.end > bytes.count {
                return (batches, WalkFault(offset: at, reason: "batch frame truncated (\(bytes.count - found.frameStart) of \(header.frameLength) bytes)", truncated: true, header: header))
            }
            batches.append(found)
            seq = header.lastSeq + 1
            prev = header.headerHash
            at = found.end
        }
        return (batches, nil)
    }

    private static func isTruncation(_ fault: HeaderFault) -> Bool {
        if case .truncated = fault { return true }
        return false
    }

    /// True when a valid batch header starts anywhere after `offset`: damage followed by
    /// good batches is corruption in the middle, not a torn tail.
    static func validHeaderExists(_ bytes: UnsafeRawBufferPointer, after offset: Int) -> Bool {
        var at = offset + 1
        while at + BatchHeader.encodedSize <= bytes.count {
            if bytes[at] == 0x50, bytes[at + 1] == 0x2A, bytes[at + 2] == 0x4D, bytes[at + 3] == 0x18,
               case .success = BatchHeader.decode(UnsafeRawBufferPointer(rebasing: bytes[at...])) {
                return true
            }
            at += 1
        }
        return false
    }

    /// Decompresses a batch into `buffer` (grown as needed) and checks it: LZ4 checksum,
    /// record framing, seq continuity, and, with `hashRecords`, the records hash.
    /// Returns nil when whole, else the reason.
    static func decompress(
        _ batch: FoundBatch, in bytes: UnsafeRawBufferPointer,
        decoder: LZ4FrameDecoder, buffer: inout [UInt8], hashRecords: Bool
    ) -> String? {
        let raw = Int(batch.header.rawLength)
        if buffer.count < raw { buffer = [UInt8](repeating: 0, count: max(raw, buffer.count * 2)) }
        let frame = UnsafeRawBufferPointer(rebasing: bytes[batch.frameStart..<batch.end])
        return buffer.withUnsafeMutableBytes { dst -> String? in
            if let why = decoder.decompress(frame, into: UnsafeMutableRawBufferPointer(rebasing: dst[0..<raw]), expected: raw) {
                return why
            }
            let records = UnsafeRawBufferPointer(rebasing: dst[0..<raw])
            if hashRecords, Array(SHA256.hash(data: records)) != batch.header.recordsHash {
                return "records do not match the batch's records hash (rewritten?)"
            }
            return checkRecords(records, header: batch.header)
        }
    }

    static func checkRecords(_ records: UnsafeRawBufferPointer, header: BatchHeader) -> String? {
        var expected = header.firstSeq
        do {
            let walk = try RecordLayout.forEach(in: records) { h, _ in
                if h.seq != expected { return false }
                expected += 1
                return true
            }
            if !walk.complete { return "record framing broken inside the batch" }
            if walk.stopped { return "record seq \(expected) out of order" }
            if walk.count != Int(header.count) { return "batch holds \(walk.count) records, header says \(header.count)" }
        } catch {
            return "\(error)"
        }
        return nil
    }
}
