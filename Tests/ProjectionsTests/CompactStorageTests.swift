import Testing
@testable import Projections

/// The compact stores behind the conversations view.
@Suite struct CompactStorageTests {
    @Test func positionsSpillToWideStorageFarFromBase() {
        var p = MessagePositions(base: 10)
        let seqs: [UInt64] = [11, 12, 1_000, 10 + UInt64(UInt32.max), 11 + UInt64(UInt32.max), 1 << 40]
        for s in seqs { p.append(s) }
        #expect(p.count == seqs.count)
        #expect(p.all == seqs)
        #expect(p.last == 1 << 40)
        for (i, s) in seqs.enumerated() {
            #expect(p[i] == s)
            #expect(p.firstIndex(after: s) == i + 1)
            #expect(p.firstIndex(after: s - 1) == i)
        }
        #expect(p.firstIndex(after: 0) == 0)
        #expect(p.seqs(2..<4) == Array(seqs[2..<4]))
    }

    @Test func positionsReadFromDeltasEqualAppendedOnesWideTailIncluded() throws {
        let seqs: [UInt64] = [11, 12, 1_000, 10 + UInt64(UInt32.max), 11 + UInt64(UInt32.max), 1 << 40]
        func decoded(_ seqs: [UInt64]) throws -> MessagePositions {
            var w = ByteWriter(capacity: 64)
            var previous: UInt64 = 0
            for s in seqs { w.varint(s &- previous); previous = s }
            return try w.bytes.withUnsafeBytes { raw in
                var r = ByteReader(raw)
                let p = try MessagePositions(base: 10, deltas: &r, count: seqs.count)
                try r.finish()
                return p
            }
        }
        var appended = MessagePositions(base: 10)
        for s in seqs { appended.append(s) }
        #expect(try decoded(seqs) == appended)
        #expect(try decoded(Array(seqs[0..<3])).all == Array(seqs[0..<3]))
        #expect(throws: EventDecodingError.self) { try decoded([11, 12, 12]) }
        #expect(throws: EventDecodingError.self) { try decoded([11, 1 << 40, 1 << 40]) }
    }

    @Test func clientIndexFindsEverySeqItStored() throws {
        var index = ClientIdIndex()
        var rng = SeededRNG(seed: 17)
        var stored: [(UInt64, UInt64)] = []
        for seq in UInt64(1)...50_000 {
            let key = rng.next()
            index.insert(key, seq: seq)
            stored.append((key, seq))
        }
        index.insert(0, seq: 1 << 40)  // beyond 36 bits: kept exactly, in the overflow
        #expect(index.candidates(0) == [1 << 40])
        #expect(index.count == 50_001)
        for (key, seq) in stored { #expect(index.candidates(key).contains(seq)) }
        var falseHits = 0
        for _ in 0..<50_000 where !index.candidates(rng.next()).isEmpty { falseHits += 1 }
        #expect(falseHits < 5)

        // Keys agreeing in the kept bits both come back, oldest first.
        let key: UInt64 = 0xAB00_0000_1234_5678
        index.insert(key, seq: 60_000)
        index.insert(key ^ 0xFF, seq: 60_001)
        #expect(index.candidates(key) == [60_000, 60_001])

        // Equality and the canonical encoding ignore the slot layout insertion order produced.
        var w = ByteWriter()
        index.encode(into: &w)
        let decoded = try w.bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            return try ClientIdIndex(decoding: &r)
        }
        #expect(decoded == index)
        var other = ClientIdIndex()
        for (key, seq) in stored.reversed() { other.insert(key, seq: seq) }
        other.insert(0, seq: 1 << 40)
        other.insert(key ^ 0xFF, seq: 60_001)
        other.insert(key, seq: 60_000)
        #expect(other == index)
        other.insert(42, seq: 1)
        #expect(other != index)
    }
}
