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
