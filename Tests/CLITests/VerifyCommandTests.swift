import Foundation
import Testing
@testable import EventLog
import Projections

/// `chat-es verify` over intact and damaged logs.
@Suite struct VerifyCommandTests {
    typealias F = CLIFixture

    private func batchOffsets(_ segment: String) throws -> [Int] {
        let bytes = try FileIO.readAll(segment)
        return bytes.withUnsafeBytes { raw in
            let first = raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
            return BatchWalk.headers(raw, expectedSeq: first, prevHash: prevHash(before: segment)).batches.map(\.offset)
        }
    }

    /// The chain tip before `segment`: the last header hash of the segments before it.
    private func prevHash(before segment: String) -> [UInt8] {
        let dir = (segment as NSString).deletingLastPathComponent
        var prev = BatchHeader.zeroHash
        var expected: UInt64 = 1
        for s in (try? Segments.list(dir)) ?? [] where s.path < segment {
            guard let bytes = try? FileIO.readAll(s.path) else { break }
            let walk = bytes.withUnsafeBytes { BatchWalk.headers($0, expectedSeq: expected, prevHash: prev) }
            if let last = walk.batches.last {
                prev = last.header.headerHash
                expected = last.header.lastSeq + 1
            }
        }
        return prev
    }

    @Test func anIntactLogPrintsCountsAndTheHeadDigest() async throws {
        let f = try await F.make()
        let expected = try LogVerifier.verify(directory: f.logDir)
        let result = try CLI.run(["verify", "--data", f.dataDir])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(expected.segments >= 3)
        #expect(result.stdout.contains("head digest:      \(f.events.count) \(expected.headHash)"))
        #expect(result.stdout.contains("segments:         \(expected.segments)\n"))
        #expect(result.stdout.contains("batches:          \(expected.batches)\n"))
        #expect(result.stdout.contains("events:           \(f.events.count)\n"))
        #expect(result.stdout.contains("bytes compressed: \(expected.compressedBytes)\n"))
        #expect(result.stdout.contains("bytes raw:        \(expected.rawBytes)\n"))
    }

    @Test func aFlippedByteIsExit1NamingFileAndOffset() async throws {
        let f = try await F.make()
        let segment = f.segmentFiles[0]
        let offsets = try batchOffsets(segment)
        #expect(offsets.count >= 2)
        var bytes = try FileIO.readAll(segment)
        bytes[offsets[1] + BatchHeader.encodedSize + 12] ^= 0x5A
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let result = try CLI.run(["verify", "--data", f.dataDir])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(segment) at byte \(offsets[1])"), "\(result.stderr)")
        #expect(!result.stdout.contains("head digest"))
    }

    @Test func aRehashedRewriteOfAnEarlierBatchIsExit1() async throws {
        let f = try await F.make()
        let segment = f.segmentFiles[0]
        let offsets = try batchOffsets(segment)
        var bytes = try FileIO.readAll(segment)
        guard case let .success(header) = bytes.withUnsafeBytes({ BatchHeader.decode(UnsafeRawBufferPointer(rebasing: $0[offsets[1]...])) }) else {
            Issue.record("no batch header at \(offsets[1])")
            return
        }
        // Rewrite batch 1 with one message altered, recompressed and re-hashed (records
        // hash and header hash), as a careful forger would: only the chain can tell.
        var raw: [UInt8] = []
        try LogCursor(directory: f.logDir, from: header.firstSeq).poll(through: header.lastSeq) { h, payload in
            var record = NewRecord(timestamp: h.timestamp, type: h.type, version: h.version, payload: Array(payload))
            if h.seq == header.firstSeq { record.payload[record.payload.count - 2] ^= 0x01 }
            RecordLayout.encode(h.seq, record, into: &raw)
            return true
        }
        var frame: [UInt8] = []
        let frameLength = try raw.withUnsafeBytes { try LZ4Frame.compress($0, appendingTo: &frame) }
        let forged = BatchHeader(count: header.count, firstSeq: header.firstSeq, firstTimestamp: header.firstTimestamp,
                                 lastTimestamp: header.lastTimestamp, rawLength: UInt32(raw.count),
                                 frameLength: UInt32(frameLength), prevHash: header.prevHash,
                                 recordsHash: raw.withUnsafeBytes { SHA256Shim.hash($0) })
        var replacement: [UInt8] = []
        forged.encode(into: &replacement)
        replacement += frame
        let end = offsets.count > 2 ? offsets[2] : bytes.count
        bytes.replaceSubrange(offsets[1]..<end, with: replacement)
        try Data(bytes).write(to: URL(fileURLWithPath: segment))

        // The chain breaks at the batch after the forged one.
        let (file, offset) = offsets.count > 2 ? (segment, offsets[1] + replacement.count) : (f.segmentFiles[1], 0)
        let result = try CLI.run(["verify", "--data", f.dataDir])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(file) at byte \(offset)"), "\(result.stderr)")
        #expect(result.stderr.contains("hash chain"))
    }
}
