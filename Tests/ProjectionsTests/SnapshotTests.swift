import Foundation
import Testing
@testable import EventLog
@testable import Projections

/// Snapshots: round trip, resume, and every way a snapshot is rejected.
@Suite struct SnapshotTests {
    func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("proj-snap-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func roundTrip() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stream = RandomStream.make(seed: 21, count: 5_000)
        let set = stream.live()
        let path = try set.writeSnapshot(to: dir)
        #expect(path == "\(dir)/snapshots/00000000000000005000.snap")
        let loaded = try #require(ProjectionSet.loadSnapshot(from: dir))
        #expect(loaded == set)
        #expect(loaded.digest() == set.digest())
        #expect(loaded.lastTimestamp == set.lastTimestamp)
        // No temp files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/snapshots") == ["00000000000000005000.snap"])
    }

    @Test func snapshotThenTailEqualsFullReplay() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stream = RandomStream.make(seed: 22, count: 2_000)
        try stream.live(through: 1_200).writeSnapshot(to: dir)
        var resumed = try #require(ProjectionSet.loadSnapshot(from: dir))
        try resumed.replay(scan: scanner(Array(stream.records[1_200...])))
        #expect(resumed == stream.live())
    }

    @Test func emptySetRoundTrips() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ProjectionSet().writeSnapshot(to: dir)
        #expect(ProjectionSet.loadSnapshot(from: dir) == ProjectionSet())
    }

    @Test func newestUsableSnapshotWins() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stream = RandomStream.make(seed: 23, count: 300)
        try stream.live(through: 100).writeSnapshot(to: dir)
        try stream.live(through: 200).writeSnapshot(to: dir)
        let newest = try stream.live(through: 300).writeSnapshot(to: dir)
        #expect(ProjectionSet.loadSnapshot(from: dir)?.lastSeq == 300)
        #expect(ProjectionSet.loadSnapshot(from: dir, maxSeq: 250)?.lastSeq == 200)
        // A damaged newest snapshot is skipped in favour of an older good one.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: newest)))
        bytes[bytes.count - 10] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: newest))
        #expect(ProjectionSet.loadSnapshot(from: dir)?.lastSeq == 200)
        ProjectionSet.pruneSnapshots(in: dir, keep: 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/snapshots") == ["00000000000000000300.snap"])
        #expect(ProjectionSet.loadSnapshot(from: dir) == nil)
    }

    @Test func otherProjectionVersionsAreIgnored() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = RandomStream.make(seed: 24, count: 200).live()
        let path = try set.writeSnapshot(to: dir)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        // The header lists each view's name then its u32 version; bump the "sessions" one.
        let name = Array("sessions".utf8)
        let at = try #require((0..<bytes.count - name.count).first { Array(bytes[$0..<($0 + name.count)]) == name })
        #expect(bytes[at + name.count] == UInt8(SessionsView.version))
        bytes[at + name.count] &+= 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(ProjectionSet.loadSnapshot(from: dir) == nil)
        // The caller then rebuilds from the log.
    }

    @Test func garbageAndMissingDirectoriesGiveNil() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(ProjectionSet.loadSnapshot(from: dir) == nil)
        #expect(ProjectionSet.loadSnapshot(from: "\(dir)/missing") == nil)
        try FileManager.default.createDirectory(atPath: "\(dir)/snapshots", withIntermediateDirectories: true)
        var rng = SeededRNG(seed: 25)
        let good = RandomStream.make(seed: 25, count: 100).live().snapshotBytes()
        for cut in stride(from: 0, to: good.count, by: 7) {
            try Data(good[0..<cut]).write(to: URL(fileURLWithPath: "\(dir)/snapshots/00000000000000000100.snap"))
            #expect(ProjectionSet.loadSnapshot(from: dir) == nil)
        }
        for _ in 0..<50 {
            var damaged = good
            damaged[Int.random(in: 0..<damaged.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            try Data(damaged).write(to: URL(fileURLWithPath: "\(dir)/snapshots/00000000000000000100.snap"))
            // Either rejected, or (if the flip hit nothing that matters) identical.
            let loaded = ProjectionSet.loadSnapshot(from: dir)
            #expect(loaded == nil || loaded == ProjectionSet.decodeSnapshot(good))
        }
        // A snapshot whose name disagrees with its content is not trusted.
        try Data(good).write(to: URL(fileURLWithPath: "\(dir)/snapshots/00000000000000000099.snap"))
        try FileManager.default.removeItem(atPath: "\(dir)/snapshots/00000000000000000100.snap")
        #expect(ProjectionSet.loadSnapshot(from: dir) == nil)
    }
}
