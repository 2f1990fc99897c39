import Foundation
import Testing
@testable import EventLog

@Suite struct AppendAndReadTests {
    @Test func roundTrip() async throws {
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path)
        var seqs: [UInt64] = []
        for i in 0..<50 { seqs.append(try await log.append(record(i))) }
        #expect(seqs == Array(1...50))
        #expect(log.durableSeq == 50)
        let back = try allRecords(dir.path)
        #expect(back.count == 50)
        for (i, r) in back.enumerated() {
            let want = record(i)
            #expect(r.seq == UInt64(i + 1))
            #expect(r.payload == want.payload && r.type == want.type && r.timestamp == want.timestamp)
        }
        #expect(try log.read(seq: 17).payload == record(16).payload)
        #expect(throws: EventLogError.self) { try log.read(seq: 51) }
        await log.close()
    }

    @Test func concurrentAppendersGetEverySeqOnceInOrder() async throws {
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path, options: EventLogOptions(durability: .never))
        let writers = 32, each = 100
        let seqs = try await withThrowingTaskGroup(of: [(UInt64, Int)].self) { group in
            for w in 0..<writers {
                group.addTask {
                    var mine: [(UInt64, Int)] = []
                    for j in 0..<each {
                        let id = w * each + j
                        mine.append((try await log.append(record(id)), id))
                    }
                    return mine
                }
            }
            var all: [(UInt64, Int)] = []
            for try await part in group { all += part }
            return all
        }
        #expect(seqs.count == writers * each)
        #expect(Set(seqs.map(\.0)) == Set(1...UInt64(writers * each)))
        let back = try allRecords(dir.path)
        #expect(back.map(\.seq) == Array(1...UInt64(writers * each)))
        for (seq, id) in seqs { #expect(back[Int(seq) - 1].payload == record(id).payload) }
        await log.close()
    }

    @Test func segmentsRollOverAndRandomReadsCrossThem() async throws {
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path, options: EventLogOptions(segmentBytes: 2048, cachedBatches: 2))
        for i in 0..<300 { try await log.append(record(i, size: 60)) }
        let files = segmentFiles(dir.path)
        #expect(files.count > 5)
        #expect(files.first!.hasSuffix("00000000000000000001.seg"))
        for seq in [1, 299, 150, 2, 77, 300, 1] as [UInt64] {
            #expect(try log.read(seq: seq).payload == record(Int(seq) - 1, size: 60).payload)
        }
        #expect(try allRecords(dir.path, from: 123).map(\.seq) == Array(123...300))
        let report = try LogVerifier.verify(directory: dir.path)
        #expect(report.events == 300 && report.segments == files.count && report.headSeq == 300)
        await log.close()
    }

    @Test func reopenContinuesTheSeqsAndTheChain() async throws {
        let dir = TempDir()
        var log = try EventLog.open(directory: dir.path, options: EventLogOptions(segmentBytes: 1024))
        for i in 0..<40 { try await log.append(record(i)) }
        let head = log.head
        await log.close()
        log = try EventLog.open(directory: dir.path, options: EventLogOptions(segmentBytes: 1024))
        #expect(log.recovery.isClean)
        #expect(log.head.seq == head.seq && log.head.hash == head.hash)
        #expect(try await log.append([record(40), record(41)]) == 41...42)
        #expect(try log.read(seq: 3).payload == record(2).payload)
        await log.close()
        let report = try LogVerifier.verify(directory: dir.path)
        #expect(report.headSeq == 42)
        #expect(try allRecords(dir.path).map(\.seq) == Array(1...42))
    }

    @Test func tailDeliversOldThenNewRecords() async throws {
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path)
        for i in 0..<5 { try await log.append(record(i)) }
        let stream = log.tail(from: 3)
        let reader = Task {
            var got: [UInt64] = []
            for try await r in stream {
                got.append(r.seq)
                if got.count == 6 { break }
            }
            return got
        }
        for i in 5..<8 { try await log.append(record(i)) }
        #expect(try await reader.value == [3, 4, 5, 6, 7, 8])
        await log.close()
    }

    @Test func aWriteErrorStopsTheWriterForGood() async throws {
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path)
        try await log.append(record(0))
        log.withCond { log.injectWriteError = true }
        await #expect(throws: EventLogError.self) { try await log.append(record(1)) }
        log.withCond { log.injectWriteError = false }
        await #expect(throws: EventLogError.self) { try await log.append(record(2)) }
        #expect(log.failureReason != nil)
        #expect(log.durableSeq == 1)
        await log.close()
        #expect(try allRecords(dir.path).map(\.seq) == [1])
    }

    @Test func durabilityPoliciesParse() {
        #expect(Durability(parsing: "always") == .always)
        #expect(Durability(parsing: "never") == .never)
        #expect(Durability(parsing: "interval=5") == .interval(milliseconds: 5))
        #expect(Durability(parsing: "interval=0") == nil)
        #expect(Durability(parsing: "sometimes") == nil)
    }

    @Test func intervalPolicyAcknowledgesAndPersists() async throws {
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path, options: EventLogOptions(durability: .interval(milliseconds: 5)))
        for i in 0..<20 { try await log.append(record(i)) }
        await log.close()
        #expect(try allRecords(dir.path).count == 20)
    }
}
