/// Idempotency index: `clientIdKey(sender:clientId:)` → seq of the message, in 8 bytes a slot.
///
/// 256 open-addressing tables (linear probing, load ≤ 7/8), chosen by the key's top
/// 8 bits; each slot packs the next 28 key bits with a 36-bit seq. That is 9–18 bytes
/// per entry where a Dictionary<UInt64, UInt64> costs 21–43 — it is the largest
/// per-message cost once every send carries a client id. The price: only 36 key bits
/// are kept, so a lookup may return a false candidate (about n / 2^36 of the time
/// with n entries). Callers confirm candidates against the stored message, which
/// they must do anyway since the key is itself a hash. Seqs past 2^36 go to a
/// dictionary keyed by the full key.
struct ClientIdIndex: Sendable {
    private static let seqBits: UInt64 = 36
    private static let seqMask: UInt64 = (1 << 36) - 1
    private static let fingerprintMask: UInt64 = (1 << 28) - 1
    private static let maxSlots = 1 << 28

    /// `tables[key >> 56]`; in each, 0 = empty, else `fingerprint << 36 | seq` (seq ≥ 1).
    private var tables = [[UInt64]](repeating: [], count: 256)
    private var counts = [Int](repeating: 0, count: 256)
    private var overflow: [UInt64: [UInt64]] = [:]

    init() {}

    var count: Int { counts.reduce(0, +) + overflow.values.reduce(0) { $0 + $1.count } }

    private static func table(_ key: UInt64) -> Int { Int(key >> 56) }
    private static func fingerprint(_ key: UInt64) -> UInt64 { (key >> 28) & fingerprintMask }

    /// The seqs stored under keys that agree with `key` in the kept bits, ascending.
    func candidates(_ key: UInt64) -> [UInt64] {
        var result: [UInt64] = []
        let slots = tables[Self.table(key)]
        if !slots.isEmpty {
            let fp = Self.fingerprint(key)
            let mask = slots.count - 1
            var i = Int(fp) & mask
            while slots[i] != 0 {
                if slots[i] >> Self.seqBits == fp { result.append(slots[i] & Self.seqMask) }
                i = (i + 1) & mask
            }
        }
        if let more = overflow[key] { result.append(contentsOf: more) }
        return result.count > 1 ? result.sorted() : result
    }

    mutating func insert(_ key: UInt64, seq: UInt64) {
        let t = Self.table(key)
        guard seq >= 1, seq <= Self.seqMask, counts[t] < Self.maxSlots / 8 * 7 else {
            overflow[key, default: []].append(seq)
            return
        }
        insert(slot: Self.fingerprint(key) << Self.seqBits | seq, table: t)
    }

    private mutating func insert(slot: UInt64, table t: Int) {
        if (counts[t] + 1) * 8 > tables[t].count * 7 { rehash(t, into: max(16, tables[t].count * 2)) }
        Self.place(slot, in: &tables[t])
        counts[t] += 1
    }

    private static func place(_ slot: UInt64, in slots: inout [UInt64]) {
        let mask = slots.count - 1
        var i = Int(slot >> seqBits) & mask
        while slots[i] != 0 { i = (i + 1) & mask }
        slots[i] = slot
    }

    private mutating func rehash(_ t: Int, into size: Int) {
        let old = tables[t]
        var slots = [UInt64](repeating: 0, count: size)
        for slot in old where slot != 0 { Self.place(slot, in: &slots) }
        tables[t] = slots
    }

    /// Per table, its packed slots sorted; then the overflow sorted by key. Canonical:
    /// independent of the slot layout that insertion order produced.
    func encode(into w: inout ByteWriter) {
        for slots in tables {
            let used = slots.filter { $0 != 0 }.sorted()
            w.int(used.count)
            for slot in used { w.fixed(slot) }
        }
        w.int(overflow.count)
        for key in overflow.keys.sorted() {
            let seqs = overflow[key] ?? []
            w.fixed(key)
            w.int(seqs.count)
            for s in seqs { w.varint(s) }
        }
    }

    init(decoding r: inout ByteReader) throws {
        for t in 0..<256 {
            let n = try r.count(minItemSize: 8)
            guard n < Self.maxSlots else { throw EventDecodingError("client-id table too large") }
            var size = 16
            while n * 8 > size * 7 { size *= 2 }
            var slots = [UInt64](repeating: 0, count: n == 0 ? 0 : size)
            for _ in 0..<n {
                let slot = try r.fixed(UInt64.self)
                guard slot & Self.seqMask != 0 else { throw EventDecodingError("empty client-id slot") }
                Self.place(slot, in: &slots)
            }
            tables[t] = slots
            counts[t] = n
        }
        let keys = try r.count(minItemSize: 9)
        for _ in 0..<keys {
            let key = try r.fixed(UInt64.self)
            let n = try r.count(minItemSize: 1)
            var seqs: [UInt64] = []
            for _ in 0..<n { seqs.append(try r.varint()) }
            overflow[key] = seqs
        }
    }
}

extension ClientIdIndex: Equatable {
    /// Same entries, whatever slot layout the insertion order produced.
    static func == (a: ClientIdIndex, b: ClientIdIndex) -> Bool {
        guard a.counts == b.counts, a.overflow == b.overflow else { return false }
        for t in 0..<256 where a.tables[t] != b.tables[t] {
            if a.tables[t].filter({ $0 != 0 }).sorted() != b.tables[t].filter({ $0 != 0 }).sorted() { return false }
        }
        return true
    }
}
