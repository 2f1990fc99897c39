import Foundation
import Testing
@testable import EventLog

@Suite struct RecoveryTests {
    /// A log of several batches in one segment; returns the batches' header offsets.
    private func makeLog(_ dir: String, batches: Int = 4) async throws -> [Int] {
        let log = try EventLog.open(directory: dir)
        for b in 0..<batches {
            try await log.append((0..<3).map { record(b * 3 + $0) })
        }
        await log.close()
        let bytes = try FileIO.readAll(segmentFiles(dir)[0])
        return bytes.withUnsafeBytes { BatchWalk.headers($0, expectedSeq: 1, prevHash: BatchHeader.zeroHash).batches.map(\.offset) }
    }

    @Test func truncationAtEveryOffsetOfTheLastBatchKeepsTheCompleteOnes() async throws {
        let dir = TempDir()
        let offsets = try await makeLog(dir.path)
        let segment = segmentFiles(dir.path)[0]
        let full = fileSize(segment)
        let lastStart = offsets.last!
        let work = dir.path + "-work"
        defer { try? FileManager.default.removeItem(atPath: work) }
        for cut in lastStart..<full {
            try copyDir(dir.path, work)
            let file = work + "/" + (segment as NSString).lastPathComponent
            #expect(truncate(file, off_t(cut)) == 0)
            let log = try EventLog.open(directory: work)
            #expect(log.durableSeq == 9, "cut at \(cut)")
            #expect(log.recovery.droppedBytes == cut - lastStart)
            #expect(fileSize(file) == lastStart)
            #expect(try await log.append(record(99)) == 10)
            await log.close()
            #expect(try LogVerifier.verify(directory: work).headSeq == 10)
        }
    }

    @Test func aCorruptLastBatchIsTruncatedAndReported() async throws {
        let dir = TempDir()
        let offsets = try await makeLog(dir.path)
        let segment = segmentFiles(dir.path)[0]
        try flipByte(segment, at: fileSize(segment) - 3)
        let log = try EventLog.open(directory: dir.path)
        #expect(log.durableSeq == 9)
        #expect(log.recovery.droppedSeqs == 10...12)
        #expect(log.recovery.file == segment)
        #expect(fileSize(segment) == offsets.last!)
        await log.close()
    }

    @Test func damageBeforeGoodBatchesInTheActiveSegmentRefusesToOpen() async throws {
        let dir = TempDir()
        let offsets = try await makeLog(dir.path)
        let segment = segmentFiles(dir.path)[0]
        try flipByte(segment, at: offsets[1] + 20)
        #expect {
            _ = try EventLog.open(directory: dir.path)
        } throws: { error in
            guard case let .corrupt(file, offset, _) = error as? EventLogError else { return false }
            return file == segment && offset == offsets[1]
        }
    }

    private func sealedLog(_ dir: String) async throws -> [String] {
        let log = try EventLog.open(directory: dir, options: EventLogOptions(segmentBytes: 1024))
        for i in 0..<60 { try await log.append(record(i)) }
        await log.close()
        return segmentFiles(dir)
    }

    @Test func aFlippedByteInASealedSegmentIsDetectedAndNamed() async throws {
        let dir = TempDir()
        let files = try await sealedLog(dir.path)
        #expect(files.count >= 3)
        // In a header: open refuses, naming the file and offset 0.
        try flipByte(files[1], at: 30)
        #expect {
            _ = try EventLog.open(directory: dir.path)
        } throws: { error in
            guard case let .corrupt(file, offset, _) = error as? EventLogError else { return false }
            return file == files[1] && offset == 0
        }
        try flipByte(files[1], at: 30)
        // In a frame: verify and replay name the file and the batch's offset.
        try flipByte(files[0], at: BatchHeader.encodedSize + 12)
        for check in [{ _ = try LogVerifier.verify(directory: dir.path) }, { _ = try allRecords(dir.path) }] {
            #expect {
                try check()
            } throws: { error in
                guard case let .corrupt(file, offset, _) = error as? EventLogError else { return false }
                return file == files[0] && offset == 0
            }
        }
    }

    @Test func aDeletedSealedSegmentIsAGap() async throws {
        let dir = TempDir()
        let files = try await sealedLog(dir.path)
        try FileManager.default.removeItem(atPath: files[1])
        #expect {
            _ = try EventLog.open(directory: dir.path)
        } throws: { error in
            guard case let .gap(file, _, _) = error as? EventLogError else { return false }
            return file == files[2]
        }
        #expect(throws: EventLogError.self) { try LogVerifier.verify(directory: dir.path) }
    }

    @Test func aRehashedRewriteOfAnEarlierBatchIsCaughtByVerify() async throws {
        let dir = TempDir()
        let offsets = try await makeLog(dir.path)
        let segment = segmentFiles(dir.path)[0]
        let good = try LogVerifier.verify(directory: dir.path)
        var bytes = try FileIO.readAll(segment)
        // Rewrite batch 1 (records 4...6) with a changed payload, recompressing it and
        // recomputing its records hash and header hash, as a careful forger would.
        let old = bytes.withUnsafeBytes { BatchHeader.decode(UnsafeRawBufferPointer(rebasing: $0[offsets[1]...])) }
        guard case let .success(header) = old else { Issue.record("no header"); return }
        var raw: [UInt8] = []
        for seq in header.firstSeq...header.lastSeq {
            var r = record(Int(seq) - 1)
            if seq == 5 { r.payload = Array("forged payload, same length as before!!!".utf8.prefix(r.payload.count)) }
            RecordLayout.encode(seq, r, into: &raw)
        }
        var frame: [UInt8] = []
        let frameLength = try raw.withUnsafeBytes { try LZ4Frame.compress($0, appendingTo: &frame) }
        let forged = BatchHeader(count: header.count, firstSeq: header.firstSeq, firstTimestamp: header.firstTimestamp,
                                 lastTimestamp: header.lastTimestamp, rawLength: UInt32(raw.count),
                                 frameLength: UInt32(frameLength), prevHash: header.prevHash,
                                 recordsHash: Array(raw.withUnsafeBytes { SHA256Shim.hash($0) }))
        var replacement: [UInt8] = []
        forged.encode(into: &replacement)
        replacement += frame
        bytes.replaceSubrange(offsets[1]..<offsets[2], with: replacement)
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        #expect {
            _ = try LogVerifier.verify(directory: dir.path)
        } throws: { error in
            guard case let .corrupt(file, _, reason) = error as? EventLogError else { return false }
            return file == segment && reason.contains("hash chain")
        }
        #expect(good.headSeq == 12)
    }

    @Test func stockLZ4DecompressesEverySegmentIntoTheRecordBytes() async throws {
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path, options: EventLogOptions(segmentBytes: 1500))
        for i in 0..<40 { try await log.append((0..<2).map { record(i * 2 + $0) }) }
        let files = segmentFiles(dir.path)
        #expect(files.count >= 3)
        var expected: [UInt8] = []
        for r in try allRecords(dir.path) {
            RecordLayout.encode(r.seq, NewRecord(timestamp: r.timestamp, type: r.type, version: r.version, payload: r.payload), into: &expected)
        }
        var fromTool: [UInt8] = []
        for file in files {  // sealed ones and the active one, while the log is open
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["lz4", "-dc", file]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let out = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            fromTool += Array(out)
        }
        #expect(fromTool == expected)
        await log.close()
    }
}
