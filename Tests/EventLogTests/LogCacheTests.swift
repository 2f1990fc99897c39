import Foundation
import Testing
@testable import EventLog

/// The file side of the PostgreSQL store: reading batches verbatim, cutting a cache back to a
/// batch boundary, appending another store's batches.
@Suite struct LogCacheTests {
    /// A log of `batches` batches of 3 records each, closed.
    func makeLog(_ dir: String, batches: Int, segmentBytes: Int = 64 << 20) async throws {
        let log = try EventLog.open(directory: dir, options: EventLogOptions(segmentBytes: segmentBytes, durability: .never))
        for b in 0..<batches {
            try await log.append((0..<3).map { record(b * 3 + $0) })
        }
        await log.close()
    }

    @Test func readerCopiesAndAppendRebuildsTheSameLog() async throws {
        let source = TempDir()
        let copy = TempDir()
        try await makeLog(source.path, batches: 40, segmentBytes: 1024)
        #expect(segmentFiles(source.path).count > 3, "the copy must cross segments")
        let reader = LogBatchReader(directory: source.path)
        var pages = 0
        // The first page through a directory opened for it alone, the rest through one appender.
        try LogCache.append(directory: copy.path, batches: try reader.next(limit: 7), segmentBytes: 1024)
        let appender = try LogCache.Appender(directory: copy.path, segmentBytes: 1024)
        #expect(appender.head.seq == 21)
        while true {
            let page = try reader.next(limit: 7)
            if page.isEmpty { break }
            pages += 1
            try appender.append(page)
            #expect(appender.head.seq == page.last!.lastSeq && appender.head.hash == page.last!.headerHash)
        }
        #expect(throws: EventLogError.self, "a page again does not continue the chain") {
            try appender.append(try LogBatchReader(directory: source.path).next(limit: 1))
        }
        appender.close()
        #expect(pages == 5)
        #expect(reader.lastSeq == 120)
        #expect(try allRecords(copy.path) == allRecords(source.path))
        let head = try LogCache.head(directory: copy.path)
        #expect(head.seq == 120 && head.hash == reader.lastHash)
        #expect(try LogVerifier.verify(directory: copy.path).headSeq == 120)
    }

    @Test func readerPagesThroughOneSegmentAPageAtATime() async throws {
        let source = TempDir()
        try await makeLog(source.path, batches: 40)
        #expect(segmentFiles(source.path).count == 1)
        let reader = LogBatchReader(directory: source.path)
        var sizes: [Int] = []
        var seqs: [UInt64] = []
        while case let page = try reader.next(limit: 7), !page.isEmpty {
            sizes.append(page.count)
            seqs += page.flatMap { Array($0.firstSeq...$0.lastSeq) }
        }
        #expect(sizes == [7, 7, 7, 7, 7, 5])
        #expect(seqs == Array(1...120))
    }

    @Test func anOpenLogTakesCommittedBatchesVerbatim() async throws {
        let source = TempDir()
        let node = TempDir()
        try await makeLog(source.path, batches: 12)
        let batches = try LogBatchReader(directory: source.path).next(limit: 100)
        let log = try EventLog.open(directory: node.path, options: EventLogOptions(segmentBytes: 256, durability: .never))
        let durable = Seqs()
        log.onDurable { durable.add($0) }
        #expect(throws: EventLogError.self) { _ = try log.appendCommitted(Array(batches[1...])) }
        let records = try log.appendCommitted(Array(batches[..<5]))
        #expect(records.map(\.seq) == Array(1...15))
        #expect(records[4].payload == record(4).payload)
        _ = try log.appendCommitted(Array(batches[5...]))
        #expect(log.durableSeq == 36 && log.nextAssignedSeq == 37)
        #expect(durable.all.last == 36)
        // Its own records continue the chain, and history reads the others' records by seq.
        try await log.append(record(36))
        #expect(try log.read(seq: 20).payload == record(19).payload)
        await log.close()
        let verified = try LogVerifier.verify(directory: node.path)
        #expect(verified.headSeq == 37)
    }

    @Test func appendRefusesABatchThatDoesNotContinueTheChain() async throws {
        let source = TempDir()
        let copy = TempDir()
        try await makeLog(source.path, batches: 3)
        let batches = try LogBatchReader(directory: source.path).next(limit: 10)
        #expect(throws: EventLogError.self) { try LogCache.append(directory: copy.path, batches: [batches[1]]) }
        var forged = batches[0]
        forged.bytes[BatchHeader.encodedSize + 5] ^= 1
        forged.headerHash[0] ^= 1
        #expect(throws: EventLogError.self) { try LogCache.append(directory: copy.path, batches: [forged]) }
        #expect(try LogCache.head(directory: copy.path).seq == 0, "nothing was written")
    }

    @Test func cutKeepsWholeBatchesUpToTheSeqAcrossSegments() async throws {
        let dir = TempDir()
        try await makeLog(dir.path, batches: 30, segmentBytes: 1024)
        let segmentsBefore = segmentFiles(dir.path).count
        let hashAt30 = try LogCache.hash(directory: dir.path, endingAt: 30)
        #expect(hashAt30 != nil)
        #expect(try LogCache.hash(directory: dir.path, endingAt: 31) == nil, "31 is inside a batch")
        #expect(throws: EventLogError.self) { try LogCache.cut(directory: dir.path, after: 31) }
        try LogCache.cut(directory: dir.path, after: 30)
        #expect(segmentFiles(dir.path).count < segmentsBefore)
        let head = try LogCache.head(directory: dir.path)
        #expect(head.seq == 30 && head.hash == hashAt30)
        #expect(try allRecords(dir.path).map(\.seq) == Array(1...30))
        // The log opens and appends after the cut as if it had always ended there.
        let log = try EventLog.open(directory: dir.path, options: EventLogOptions(durability: .never))
        #expect(try await log.append(record(99)) == 31)
        await log.close()
        try LogCache.cut(directory: dir.path, after: 0)
        #expect(try LogCache.head(directory: dir.path).seq == 0)
    }

    @Test func readerStopsAtATornTailWithoutRepairingIt() async throws {
        let dir = TempDir()
        try await makeLog(dir.path, batches: 5)
        let last = segmentFiles(dir.path).last!
        let size = fileSize(last)
        let fd = open(last, O_WRONLY | O_APPEND)
        _ = [UInt8](repeating: 0x50, count: 20).withUnsafeBytes { write(fd, $0.baseAddress, 20) }
        close(fd)
        let batches = try LogBatchReader(directory: dir.path).next(limit: 100)
        #expect(batches.count == 5)
        #expect(fileSize(last) == size + 20, "a reader never truncates")
    }
}

/// Seqs reported durable, across threads.
private final class Seqs: @unchecked Sendable {
    private let lock = NSLock()
    private var seqs: [UInt64] = []
    func add(_ seq: UInt64?) { lock.withLock { if let seq { seqs.append(seq) } } }
    var all: [UInt64] { lock.withLock { seqs } }
}
