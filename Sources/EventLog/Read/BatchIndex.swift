import Foundation

/// Where one batch lives: enough to read it back without scanning.
struct BatchLocation {
    var firstSeq: UInt64
    var count: UInt32
    var segment: UInt32
    /// Offset of the batch header in its segment.
    var offset: UInt64
    var frameLength: UInt32
    var rawLength: UInt32

    var lastSeq: UInt64 { firstSeq + UInt64(count) - 1 }
}

/// A decompressed batch kept for random reads.
final class CachedBatch {
    let firstSeq: UInt64
    let raw: [UInt8]
    /// Offset of each record in `raw`.
    let offsets: [Int]

    init(firstSeq: UInt64, raw: [UInt8], offsets: [Int]) {
        self.firstSeq = firstSeq
        self.raw = raw
        self.offsets = offsets
    }
}

/// The sparse in-memory index of batch offsets, built at open from headers alone,
/// plus open read descriptors and a small cache of decompressed batches.
struct BatchIndex {
    var segments: [String] = []
    var batches: [BatchLocation] = []
    var readers: [Int: Int32] = [:]
    var cache: [UInt64: CachedBatch] = [:]
    var cacheOrder: [UInt64] = []
    var decoders: [LZ4FrameDecoder] = []

    /// The batch holding `seq`, by binary search.
    func locate(_ seq: UInt64) -> BatchLocation? {
        var lo = 0
        var hi = batches.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if batches[mid].lastSeq < seq { lo = mid + 1 } else { hi = mid }
        }
        guard lo < batches.count, batches[lo].firstSeq <= seq else { return nil }
        return batches[lo]
    }

    mutating func reader(for segment: Int) throws -> (Int32, String) {
        let path = segments[segment]
        if let fd = readers[segment] { return (fd, path) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EventLogError.io(FileIO.errnoText("open \(path)")) }
        readers[segment] = fd
        return (fd, path)
    }

    mutating func remember(_ batch: CachedBatch, capacity: Int) {
        guard capacity > 0 else { return }
        if cache[batch.firstSeq] == nil { cacheOrder.append(batch.firstSeq) }
        cache[batch.firstSeq] = batch
        while cacheOrder.count > capacity {
            cache[cacheOrder.removeFirst()] = nil
        }
    }

    mutating func closeReaders() {
        for fd in readers.values { close(fd) }
        readers = [:]
    }
}

extension EventLog {
    /// The hash (hex) of the header of the durable batch that ends at `seq`, read from that
    /// batch's successor (its `prevHash`) or, at the head, from the chain's tip; nil when no
    /// durable batch ends exactly at `seq`. A snapshot taken at `seq` recorded this hash, so a
    /// match proves the snapshot was made of this very log.
    public func chainHash(at seq: UInt64) throws -> String? {
        let head = self.head
        if seq == head.seq { return head.hash }
        guard seq < head.seq else { return nil }
        if seq == 0 { return hexString(BatchHeader.zeroHash) }
        indexLock.lock()
        let next = index.locate(seq + 1)
        let opened = next.map { location in Result { try index.reader(for: Int(location.segment)) } }
        indexLock.unlock()
        guard let next, next.firstSeq == seq + 1, let (fd, path) = try opened?.get() else { return nil }
        var bytes = [UInt8](repeating: 0, count: BatchHeader.encodedSize)
        let got = try bytes.withUnsafeMutableBytes { try FileIO.preadFully(fd, $0, offset: Int(next.offset), path: path) }
        guard got == bytes.count, case let .success(header) = bytes.withUnsafeBytes({ BatchHeader.decode($0) }) else {
            throw EventLogError.corrupt(file: path, offset: Int(next.offset), reason: "batch header unreadable")
        }
        return hexString(header.prevHash)
    }

    /// Reads one durable record by seq (for history), through the index and the batch cache.
    public func read(seq: UInt64) throws -> Record {
        guard seq >= 1, seq <= durableSeq else { throw EventLogError.notFound(seq) }
        let batch = try cachedBatch(containing: seq)
        let i = Int(seq - batch.firstSeq)
        guard i < batch.offsets.count else { throw EventLogError.notFound(seq) }
        return batch.raw.withUnsafeBytes { raw -> Record in
            let o = batch.offsets[i]
            let len = Int(raw.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian)
            let ts = Int64(bitPattern: raw.loadUnaligned(fromByteOffset: o + 12, as: UInt64.self).littleEndian)
            let type = raw.loadUnaligned(fromByteOffset: o + 20, as: UInt16.self).littleEndian
            let version = raw.loadUnaligned(fromByteOffset: o + 22, as: UInt16.self).littleEndian
            let start = o + RecordLayout.headerSize
            return Record(seq: seq, timestamp: ts, type: type, version: version,
                          payload: Array(raw[start..<(start + len)]))
        }
    }

    private func cachedBatch(containing seq: UInt64) throws -> CachedBatch {
        indexLock.lock()
        guard let location = index.locate(seq) else {
            indexLock.unlock()
            throw EventLogError.notFound(seq)
        }
        if let hit = index.cache[location.firstSeq] {
            indexLock.unlock()
            return hit
        }
        let decoder = index.decoders.popLast() ?? LZ4FrameDecoder()
        let opened = Result { try index.reader(for: Int(location.segment)) }
        indexLock.unlock()
        defer {
            indexLock.lock()
            index.decoders.append(decoder)
            indexLock.unlock()
        }
        let (fd, path) = try opened.get()
        var frame = [UInt8](repeating: 0, count: Int(location.frameLength))
        let frameOffset = Int(location.offset) + BatchHeader.encodedSize
        let got = try frame.withUnsafeMutableBytes { try FileIO.preadFully(fd, $0, offset: frameOffset, path: path) }
        guard got == frame.count else {
            throw EventLogError.corrupt(file: path, offset: Int(location.offset), reason: "batch frame cut short")
        }
        var raw = [UInt8](repeating: 0, count: Int(location.rawLength))
        let why = frame.withUnsafeBytes { src in
            raw.withUnsafeMutableBytes { dst in decoder.decompress(src, into: dst, expected: dst.count) }
        }
        if let why { throw EventLogError.corrupt(file: path, offset: Int(location.offset), reason: why) }
        var offsets: [Int] = []
        offsets.reserveCapacity(Int(location.count))
        var at = 0
        raw.withUnsafeBytes { bytes in
            while at + RecordLayout.headerSize <= bytes.count {
                offsets.append(at)
                at += RecordLayout.headerSize + Int(bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian)
            }
        }
        guard offsets.count == Int(location.count), at == raw.count else {
            throw EventLogError.corrupt(file: path, offset: Int(location.offset), reason: "record framing broken inside the batch")
        }
        let batch = CachedBatch(firstSeq: location.firstSeq, raw: raw, offsets: offsets)
        indexLock.lock()
        index.remember(batch, capacity: options.cachedBatches)
        indexLock.unlock()
        return batch
    }
}
