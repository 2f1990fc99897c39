/// The ascending message seqs of one conversation, 4 bytes each.
///
/// Seqs are stored as 32-bit offsets from `base` (the conversation's start); should a
/// conversation outlive 4 billion records, later seqs go to a 64-bit tail. Halving
/// the per-message cost matters: this is most of the memory a big log needs.
struct MessagePositions: Sendable, Equatable {
    let base: UInt64
    private var offsets: [UInt32] = []
    /// Seqs too far from `base`; all greater than every offset-stored seq.
    private var wide: [UInt64] = []

    init(base: UInt64) {
        self.base = base
    }

    var count: Int { offsets.count + wide.count }
    var isEmpty: Bool { count == 0 }

    subscript(i: Int) -> UInt64 {
        i < offsets.count ? base + UInt64(offsets[i]) : wide[i - offsets.count]
    }

    var last: UInt64? { isEmpty ? nil : self[count - 1] }

    /// Callers keep seqs ascending and greater than `base`.
    mutating func append(_ seq: UInt64) {
        if wide.isEmpty, seq > base, let offset = UInt32(exactly: seq - base) {
            offsets.append(offset)
        } else {
            wide.append(seq)
        }
    }

    mutating func reserveCapacity(_ n: Int) { offsets.reserveCapacity(n) }

    /// `count` seqs read as varint deltas (each greater than the one before), as a snapshot
    /// stores them: filled in place, not appended one by one (a start decodes millions).
    init(base: UInt64, deltas r: inout ByteReader, count: Int) throws {
        self.base = base
        var previous: UInt64 = 0
        func nextSeq() throws -> UInt64 {
            let (next, overflow) = previous.addingReportingOverflow(try r.varint())
            guard !overflow, next > previous else { throw EventDecodingError("message seqs not ascending") }
            previous = next
            return next
        }
        var firstWide: UInt64?
        offsets = try [UInt32](unsafeUninitializedCapacity: count) { buffer, filled in
            filled = 0
            while filled < count {
                let next = try nextSeq()
                guard next > base, let offset = UInt32(exactly: next - base) else {
                    firstWide = next
                    return
                }
                buffer[filled] = offset
                filled += 1
            }
        }
        // Rare: a conversation older than 4 billion records keeps its later seqs wide.
        if let firstWide {
            wide.append(firstWide)
            while offsets.count + wide.count < count { wide.append(try nextSeq()) }
        }
    }

    /// Index of the first seq greater than `after` (binary search).
    func firstIndex(after: UInt64) -> Int {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self[mid] <= after { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func seqs(_ range: Range<Int>) -> [UInt64] {
        var result: [UInt64] = []
        result.reserveCapacity(range.count)
        for i in range { result.append(self[i]) }
        return result
    }

    var all: [UInt64] { seqs(0..<count) }
}
