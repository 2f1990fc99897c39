import Foundation
import PostgresTestSupport
import Testing
@testable import EventLog

/// The PostgreSQL store: the writer's batches land in the table byte for byte, a writer that
/// lost its place is fenced out, an answer lost after a commit is not a failure, and a local
/// cache is brought level with the table (cut where it ran ahead, fetched where it is behind).
@Suite(.enabled(if: PostgresTestServer.available, "set CHAT_ES_TEST_POSTGRES to run against PostgreSQL"))
struct PostgresLogTests {
    /// Appends `count` single-record units through a log mirrored to `store`, 10 at a time
    /// (so several writes gather into one batch, and there are several batches).
    func appendMirrored(_ dir: String, _ store: PostgresLog, count: Int) async throws {
        let log = try EventLog.open(directory: dir, options: EventLogOptions(durability: .never, mirror: store))
        for round in stride(from: 0, to: count, by: 10) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in round..<min(round + 10, count) {
                    group.addTask { try await log.append(record(i)) }
                }
                try await group.waitForAll()
            }
        }
        await log.close()
    }

    @Test func mirroredBatchesAreTheLocalBatchesByteForByte() async throws {
        let store = try await PostgresLog.open(url: PostgresTestServer.freshDatabase())
        let dir = TempDir()
        try await appendMirrored(dir.path, store, count: 200)
        let local = try LogBatchReader(directory: dir.path).next(limit: 10_000)
        let remote = try await store.batches(after: 0, limit: 10_000)
        #expect(local.count > 1)
        #expect(remote == local)
        let head = try await store.head()
        #expect(head.seq == 200 && head.hash == local.last!.headerHash)
        #expect(try await store.hash(endingAt: local[0].lastSeq) == local[0].headerHash)
        await store.close()
    }

    @Test func aWriterThatLostItsPlaceIsFencedAndARetriedCommitIsNot() async throws {
        let url = try await PostgresTestServer.freshDatabase()
        let first = try await PostgresLog.open(url: url)
        let second = try await PostgresLog.open(url: url)
        #expect(first.logId == second.logId && !first.logId.isEmpty)
        let a = TempDir()
        let b = TempDir()
        // Two logs that share their first batch and then differ.
        try await appendMirrored(a.path, first, count: 1)
        try LogCache.append(directory: b.path, batches: LogBatchReader(directory: a.path).next(limit: 1))
        let logA = try EventLog.open(directory: a.path, options: EventLogOptions(durability: .never))
        try await logA.append(record(10))
        await logA.close()
        let logB = try EventLog.open(directory: b.path, options: EventLogOptions(durability: .never))
        try await logB.append(record(20))
        try await logB.append(record(21))
        await logB.close()
        let batchA = try LogBatchReader(directory: a.path).next(limit: 10)[1]
        let batchesB = try LogBatchReader(directory: b.path).next(limit: 10)
        try first.store(batchA)
        // The answer to a commit was lost and the writer tries again: the row is already its own.
        try first.store(batchA)
        #expect(throws: PostgresLogError.self) { try second.store(batchesB[1]) }
        // A batch that skips ahead of the stored chain is refused too.
        #expect(throws: PostgresLogError.self) { try second.store(batchesB[2]) }
        #expect(try await first.head().seq == 2)
        await first.close()
        await second.close()
    }

    @Test func aCacheIsCutWhereItRanAheadAndFetchedWhereItIsBehind() async throws {
        let store = try await PostgresLog.open(url: PostgresTestServer.freshDatabase())
        let node = TempDir()
        _ = try await store.syncCache(directory: node.path)
        try await appendMirrored(node.path, store, count: 50)
        // A batch written locally whose commit never happened (the node died in between).
        let unmirrored = try EventLog.open(directory: node.path, options: EventLogOptions(durability: .never))
        try await unmirrored.append([record(900), record(901)])
        await unmirrored.close()
        let report = try await store.syncCache(directory: node.path)
        #expect(report.cut == 51...52)
        #expect(try LogCache.head(directory: node.path).seq == 50)

        // A second, empty cache fetches everything.
        let other = TempDir()
        var progressed: UInt64 = 0
        let fetched = try await store.syncCache(directory: other.path) { seq, _ in progressed = seq }
        #expect(fetched.fetched == 1...50 && progressed == 50)
        #expect(try allRecords(other.path) == allRecords(node.path))
        await store.close()
    }

    @Test func aFileLogOrAnotherDatabasesCacheIsNeverTakenForThisCache() async throws {
        let store = try await PostgresLog.open(url: PostgresTestServer.freshDatabase())
        let fileLog = TempDir()
        let log = try EventLog.open(directory: fileLog.path, options: EventLogOptions(durability: .never))
        try await log.append(record(1))
        await log.close()
        await #expect(throws: CacheSyncError.self) { _ = try await store.syncCache(directory: fileLog.path) }
        #expect(try LogCache.head(directory: fileLog.path).seq == 1, "the file log is untouched")

        let otherStore = try await PostgresLog.open(url: PostgresTestServer.freshDatabase())
        let cache = TempDir()
        _ = try await otherStore.syncCache(directory: cache.path)
        await #expect(throws: CacheSyncError.self) { _ = try await store.syncCache(directory: cache.path) }
        await store.close()
        await otherStore.close()
    }

    @Test func aPageOfBatchesIsStoredWholeOrNotAtAll() async throws {
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path, options: EventLogOptions(durability: .never))
        for i in 0..<(PostgresLog.batchesPerStatement + 600) { try await log.append(record(i)) }
        await log.close()
        let batches = try LogBatchReader(directory: dir.path).next(limit: 10_000)
        #expect(batches.count > PostgresLog.batchesPerStatement + 100, "a page must span statements")
        let store = try await PostgresLog.open(url: PostgresTestServer.freshDatabase())
        await #expect(throws: PostgresLogError.self, "the first batch is not the start of the chain") {
            try await store.insert(Array(batches[1...]))
        }
        #expect(try await store.head().seq == 0)
        let cut = PostgresLog.batchesPerStatement + 50
        try await store.insert(Array(batches[..<cut]))
        #expect(try await store.head().seq == batches[cut - 1].lastSeq)
        await #expect(throws: PostgresLogError.self, "a page with a hole") {
            try await store.insert([batches[cut], batches[cut + 2]])
        }
        await #expect(throws: (any Error).self, "a page overlapping the stored batches") {
            try await store.insert(Array(batches[(cut - 10)...]))
        }
        #expect(try await store.head().hash == batches[cut - 1].headerHash, "nothing of a refused page was stored")
        try await store.insert(Array(batches[cut...]))
        #expect(try await store.batches(after: 0, limit: 10_000) == batches)
        await store.close()
    }

    @Test func keysAreStoredManyToAStatementAndTheLastKeyOfAUserWins() async throws {
        let store = try await PostgresLog.open(url: PostgresTestServer.freshDatabase())
        let count = PostgresLog.keysPerStatement * 2 + 7
        var entries = (1...UInt32(count)).map { ($0, [UInt8](repeating: UInt8($0 % 251), count: 60)) }
        entries.append((5, [1, 2, 3]))
        try store.storeWrappedKeys(entries)
        // A later store replaces what an earlier one left (a registration that never reached the log).
        try store.storeWrappedKeys([(6, [4, 5])])
        let stored = try store.allWrappedKeys()
        #expect(stored.count == count)
        #expect(stored.map(\.0) == Array(1...UInt32(count)))
        #expect(stored[4].1 == [1, 2, 3] && stored[5].1 == [4, 5])
        #expect(stored[count - 1].1 == [UInt8](repeating: UInt8(count % 251), count: 60))
        await store.close()
    }

    @Test func theWriteTurnIsOneNodesAtATime() async throws {
        let url = try await PostgresTestServer.freshDatabase()
        let first = try await PostgresLog.open(url: url)
        let second = try await PostgresLog.open(url: url)
        let held = try await first.lockTurn(timeout: 5)
        #expect(held != nil && held == first.currentConnectionId)
        #expect(try await second.lockTurn(timeout: 0.2) == nil, "the other node waits, then gives up")
        await first.unlockTurn()
        #expect(try await second.lockTurn(timeout: 5) != nil)
        await second.unlockTurn()
        // A node that dies gives the turn up with its session.
        #expect(try await first.lockTurn(timeout: 5) != nil)
        await first.close()
        #expect(try await second.lockTurn(timeout: 5) != nil)
        await second.close()
    }

    @Test func nodesAndTheirHeartbeats() async throws {
        let url = try await PostgresTestServer.freshDatabase()
        let store = try await PostgresLog.open(url: url)
        try await store.registerNode(epoch: 3, node: "n1", address: "a:1", connections: "")
        try await store.registerNode(epoch: 4, node: "n2", address: "a:2", connections: "")
        #expect(try await store.epochs(ofNode: "n1") == [3])
        #expect(try await store.staleNodes(olderThan: 60).isEmpty)
        try await Task.sleep(nanoseconds: 300_000_000)
        try await store.heartbeat(epoch: 4)
        #expect(try await store.staleNodes(olderThan: 0.2) == [3])
        try await store.removeNode(epoch: 3)
        #expect(try await store.liveNodes().map(\.epoch) == [4])
        await store.close()
    }

    @Test func aStaleNodesSessionsAreEnded() async throws {
        let url = try await PostgresTestServer.freshDatabase()
        let store = try await PostgresLog.open(url: url)
        let hung = try await PostgresLog.open(url: url.named("chat-es hung-node"))
        #expect(try await hung.lockTurn(timeout: 1) != nil)
        try await store.registerNode(epoch: 7, node: "hung", address: "a:7", connections: "chat-es hung-node")
        #expect(try await store.endConnections(ofStaleNode: 7, olderThan: 60) == 0, "a node with a fresh heartbeat is left alone")
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(try await store.endConnections(ofStaleNode: 7, olderThan: 0.2) == 1)
        // Its turn lock went with its session.
        #expect(try await store.lockTurn(timeout: 2) != nil)
        await hung.close()
        await store.close()
    }

    @Test func aCommittedBatchIsAnnounced() async throws {
        let url = try await PostgresTestServer.freshDatabase()
        let store = try await PostgresLog.open(url: url)
        let heard = Heard()
        let listener = PostgresLog.listen(url: url, channel: PostgresLog.logChannel, logger: .init(label: "test")) { _ in heard.add() }
        // The listener says it is there once (it may have missed a batch while away).
        for _ in 0..<100 where heard.count < 1 { try await Task.sleep(nanoseconds: 20_000_000) }
        let before = heard.count
        let dir = TempDir()
        let log = try EventLog.open(directory: dir.path, options: EventLogOptions(durability: .never, mirror: store))
        try await log.append(NewRecord(timestamp: 1, type: 1, version: 1, payload: [1]))
        for _ in 0..<100 where heard.count == before { try await Task.sleep(nanoseconds: 20_000_000) }
        #expect(heard.count > before)
        listener.cancel()
        await log.close()
        await store.close()
    }
}

/// Notifications counted across threads.
private final class Heard: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var count: Int { lock.withLock { n } }
}
