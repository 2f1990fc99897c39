import EventLog
import Foundation
import Hummingbird
import HummingbirdTesting
import Projections
import Testing
@testable import API

/// Starts that replay only a tail: the snapshot written at shutdown and in the background, and
/// what a start reports while it runs.
@Suite struct StartupTests {
    /// Some traffic through the Ledger: users, a chat, messages, a logout.
    func traffic(_ ledger: Ledger, users: Int = 4, messages: Int = 30) async throws {
        for i in 1...users { _ = try await ledger.register(username: "user\(i)", passwordHash: "x") }
        let session = try await ledger.session(of: 1)
        for other in 2...users { _ = try await ledger.startChat(from: session, with: .id(UInt32(other))) }
        for i in 0..<messages { _ = try await ledger.send(from: session, to: "user\(2 + i % (users - 1))", text: "m\(i)", clientId: "c\(i)") }
        try await ledger.log.waitUntilDurable(ledger.log.nextAssignedSeq - 1)
    }

    /// The views a full replay of the data directory's log gives.
    func fullReplay(_ dataDirectory: String) async throws -> ProjectionSet {
        let log = try EventLog.open(directory: dataDirectory + "/log")
        defer { Task { await log.close() } }
        return try ProjectionSet.rebuild(scan: { try log.scan(from: 1, $0) })
    }

    @Test func aSecondServerOnTheSameDirectoryRefusesToStart() async throws {
        let data = TestData()
        let first = try await data.service()
        let second = try await data.service(start: false)
        let error = await #expect(throws: (any Error).self) { try await second.start() }
        #expect("\(error.map { "\($0)" } ?? "")".contains("another chat-es process serves"))
        await first.shutdown()
        // Free once the first has stopped.
        try await second.start()
        await second.shutdown()
    }

    @Test func aGracefulStopWritesASnapshotAndTheNextStartReplaysOnlyTheTail() async throws {
        let data = TestData()
        let first = try await data.service()
        try await traffic(try #require(first.ledger))
        let stoppedAt = try #require(first.ledger).log.durableSeq
        await first.shutdown()
        let files = ProjectionSet.snapshotFiles(in: data.path)
        #expect(files.map(\.seq) == [stoppedAt], "one snapshot, at the flushed head")

        let second = try await data.service()
        let report = second.startReport
        #expect(report.events == 0, "nothing after the snapshot to replay")
        #expect(report.snapshot?.seq == stoppedAt)
        let ledger = try #require(second.ledger)
        try await ledger.log.waitUntilDurable(ledger.log.nextAssignedSeq - 1)
        let live = await ledger.views
        await second.shutdown()
        let full = try await fullReplay(data.path)
        // The second start's views (from the snapshot, then its ServerStarted) are the full replay's.
        #expect(live.lastSeq == full.lastSeq)
        #expect(live.digest() == full.digest())
        #expect(ProjectionSet.snapshotFiles(in: data.path).count == 2)
    }

    @Test func theBackgroundWriterSnapshotsWhileServingAndAStartUsesIt() async throws {
        let data = TestData()
        let service = try await data.service(snapshots: SnapshotPolicy(events: 20, seconds: 1, keep: 2))
        try await traffic(try #require(service.ledger), users: 5, messages: 60)
        let deadline = Date().addingTimeInterval(15)
        while ProjectionSet.snapshotFiles(in: data.path).isEmpty && Date() < deadline {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let written = try #require(ProjectionSet.snapshotFiles(in: data.path).last, "a snapshot while serving")
        // As if killed here: no shutdown snapshot. A start from the background one equals a
        // full replay (both read the log read-only, beside the running service).
        let logDir = data.path + "/log"
        let loaded = ProjectionSet.loadNewestSnapshot(from: data.path) { try? LogChain.hash(directory: logDir, at: $0) }
        #expect(loaded.file?.seq == written.seq && loaded.skipped.isEmpty)
        var started = try #require(loaded.set)
        let from = started.lastSeq + 1
        try started.replayInParallel(scan: { _ = try LogCursor(directory: logDir, from: from).poll($0) })
        let full = try ProjectionSet.rebuild(scan: { _ = try LogCursor(directory: logDir, from: 1).poll($0) })
        #expect(started == full)
        await service.shutdown()
        #expect(ProjectionSet.snapshotFiles(in: data.path).count <= 2, "pruned to the newest 2")
    }

    @Test func healthzReportsProgressWhileReplaying() async throws {
        let data = TestData()
        let first = try await data.service()
        try await traffic(try #require(first.ledger))
        await first.shutdown()
        let service = try await data.service(start: false)
        try await service.application().test(.router) { client in
            let r = try await client.execute(uri: "/healthz", method: .get)
            #expect(r.status == .serviceUnavailable)
            let body = object(r)
            #expect(body["status"] as? String == "replaying" && body["replayed"] as? Int == 0)
        }
        try await service.start()
        try await service.application().test(.router) { client in
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains("chat_start_replay_seconds "))
            #expect(metrics.contains("chat_snapshot_age_seconds "))
        }
        await service.shutdown()
    }
}
