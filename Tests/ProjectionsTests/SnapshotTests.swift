import Foundation
import Testing
@testable import EventLog
@testable import Projections

/// Snapshots: a start from one equals a full replay, and every way a snapshot is refused.
@Suite struct SnapshotTests {
    /// A random stream appended to a real log in batches of `batch` records.
    struct OnDisk {
        let dir: String
        let stream: RandomStream
        let log: EventLog
        let batch: Int

        static func make(seed: UInt64, count: Int, batch: Int = 97) async throws -> OnDisk {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("proj-snap-\(UUID().uuidString)").path
            let stream = RandomStream.make(seed: seed, count: count)
            let log = try EventLog.open(directory: dir + "/log", options: EventLogOptions(segmentBytes: 64 << 10, durability: .never))
            var start = 0
            while start < stream.items.count {
                let records = stream.items[start..<min(start + batch, stream.items.count)].map {
                    NewRecord(timestamp: $0.record.timestamp, type: $0.record.type, version: $0.record.version, payload: $0.record.payload)
                }
                try await log.append(records)
                start += records.count
            }
            return OnDisk(dir: dir, stream: stream, log: log, batch: batch)
        }

        func chainHash(_ seq: UInt64) -> String? { try? log.chainHash(at: seq) }

        /// Writes the live state through `seq` (a batch end) as a snapshot.
        @discardableResult
        func snapshot(through seq: Int) throws -> SnapshotFile {
            try stream.live(through: seq).writeSnapshot(to: dir, chainHash: try #require(chainHash(UInt64(seq))))
        }

        func load() -> (set: ProjectionSet?, file: SnapshotFile?, skipped: [(SnapshotFile, String)]) {
            ProjectionSet.loadNewestSnapshot(from: dir) { chainHash($0) }
        }

        /// What `serve` does: the newest usable snapshot, then the tail on two threads.
        func start() throws -> ProjectionSet {
            var set = load().set ?? ProjectionSet()
            let from = set.lastSeq + 1
            let log = self.log
            try set.replayInParallel(scan: { try log.scan(from: from, $0) })
            return set
        }

        func close() async {
            await log.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test func aSnapshotRoundTripsAndLeavesNoTempFile() async throws {
        let disk = try await OnDisk.make(seed: 21, count: 5_000)
        let file = try disk.snapshot(through: 97 * 30)
        #expect(file.name == "00000000000000002910-\(ProjectionSet.schemaFingerprint).snap")
        let loaded = disk.load()
        #expect(loaded.file == ProjectionSet.snapshotFiles(in: disk.dir).first && loaded.skipped.isEmpty)
        #expect(loaded.set == disk.stream.live(through: 2_910))
        #expect(loaded.set?.digest() == disk.stream.live(through: 2_910).digest())
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(disk.dir)/snapshots") == [file.name])
        await disk.close()
    }

    /// The property the start relies on, over random logs and random snapshot positions.
    @Test(arguments: 40..<46 as Range<UInt64>)
    func startingFromASnapshotEqualsAFullReplay(seed: UInt64) async throws {
        var rng = SeededRNG(seed: seed)
        let disk = try await OnDisk.make(seed: seed, count: 3_000, batch: Int.random(in: 1...200, using: &rng))
        let full = try ProjectionSet.rebuild(scan: { try disk.log.scan(from: 1, $0) })
        #expect(full == disk.stream.live())
        let ends = Array(stride(from: disk.batch, through: 3_000, by: disk.batch))
        try disk.snapshot(through: ends.randomElement(using: &rng)!)
        let started = try disk.start()
        #expect(started == full)
        #expect(started.digest() == full.digest())
        await disk.close()
    }

    @Test func theNewestUsableSnapshotWinsAndEverySkippedOneIsNamed() async throws {
        let disk = try await OnDisk.make(seed: 23, count: 1_000, batch: 100)
        try disk.snapshot(through: 100)
        try disk.snapshot(through: 200)
        let newest = try disk.snapshot(through: 300)
        #expect(disk.load().set?.lastSeq == 300)
        // Damaged: skipped, named, and the older good one is used.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: newest.path)))
        bytes[bytes.count - 10] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: newest.path))
        let loaded = disk.load()
        #expect(loaded.set?.lastSeq == 200)
        #expect(loaded.skipped.map(\.0.name) == [newest.name])
        #expect(loaded.skipped.first?.1.contains("damaged") == true || loaded.skipped.first?.1.contains("checksum") == true)
        #expect(try disk.start() == disk.stream.live())
        ProjectionSet.pruneSnapshots(in: disk.dir, keep: 1)
        #expect(ProjectionSet.snapshotFiles(in: disk.dir).map(\.seq) == [300])
        await disk.close()
    }

    @Test func aSnapshotOfOtherViewVersionsOrOfAnotherLogIsSkippedForAFullReplay() async throws {
        let disk = try await OnDisk.make(seed: 24, count: 600, batch: 50)
        // A schema change: the newest snapshot was written by a build with other view versions.
        let file = try disk.snapshot(through: 500)
        let other = "\(disk.dir)/snapshots/\(SnapshotFile.name(seq: 550, fingerprint: "0badf00d"))"
        try FileManager.default.moveItem(atPath: file.path, toPath: other)
        let loaded = disk.load()
        #expect(loaded.set == nil)
        #expect(loaded.skipped.first?.1.contains("other view versions") == true)
        #expect(try disk.start() == disk.stream.live(), "a full replay")
        // A snapshot whose chain hash is not this log's (a restored or replaced log).
        try disk.stream.live(through: 400).writeSnapshot(to: disk.dir, chainHash: String(repeating: "ab", count: 32))
        #expect(disk.load().skipped.contains { $0.1.contains("another log") })
        // Past the log's end, or not at a batch end: no chain hash to match.
        try disk.stream.live(through: 420).writeSnapshot(to: disk.dir, chainHash: String(repeating: "cd", count: 32))
        #expect(disk.load().skipped.contains { $0.1.contains("not a batch end") })
        // Pruning keeps a newer snapshot of other versions (an upgrade's, ahead of its restart).
        try disk.snapshot(through: 300)
        ProjectionSet.pruneSnapshots(in: disk.dir, keep: 1)
        #expect(FileManager.default.fileExists(atPath: other))
        await disk.close()
    }

    @Test func tornDamagedAndHalfWrittenSnapshotsAreNeverUsed() async throws {
        let disk = try await OnDisk.make(seed: 25, count: 300, batch: 100)
        let good = try disk.snapshot(through: 200)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: good.path)))
        var rng = SeededRNG(seed: 25)
        for cut in stride(from: 0, to: bytes.count, by: 7) {
            try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: good.path))
            #expect(disk.load().set == nil)
        }
        for _ in 0..<50 {
            var damaged = bytes
            damaged[Int.random(in: 0..<damaged.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            try Data(damaged).write(to: URL(fileURLWithPath: good.path))
            // Either refused, or (if the flip hit nothing that matters) the same state.
            let loaded = disk.load().set
            #expect(loaded == nil || loaded == disk.stream.live(through: 200))
        }
        // A kill -9 mid-write leaves only a temp file: never read, removed once its writer is gone.
        try Data(bytes[0..<(bytes.count / 2)]).write(to: URL(fileURLWithPath: good.path + ".tmp-2147483646"))
        try FileManager.default.removeItem(atPath: good.path)
        #expect(disk.load().set == nil && disk.load().skipped.isEmpty)
        ProjectionSet.pruneSnapshots(in: disk.dir, keep: 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(disk.dir)/snapshots").isEmpty)
        #expect(try disk.start() == disk.stream.live())
        await disk.close()
    }

    @Test func theTwoThreadReplayFoldsAsOneThreadDoesUpToAnUndecodableRecord() throws {
        let stream = RandomStream.make(seed: 26, count: 20_000)
        var records = stream.records
        #expect(try ProjectionSet.rebuildInParallel(scan: scanner(records)) == stream.live())
        #expect(try ProjectionSet.rebuildInParallel(scan: scanner(records), asOf: .seq(12_345)) == stream.live(through: 12_345))
        records[15_000].payload = [0xFF]
        var parallel = ProjectionSet()
        let error = #expect(throws: EventDecodingError.self) { try parallel.replayInParallel(scan: scanner(records)) }
        #expect(error?.description.hasPrefix("seq 15001") == true)
        #expect(parallel == stream.live(through: 15_000))
    }
}

