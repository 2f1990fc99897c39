import API
import ArgumentParser
import EventLog
import Foundation
import Projections

/// `chat-es copy`: copies a log between a data directory and PostgreSQL, either way, batch by
/// batch as stored (so the hash chain is the same on both sides), and checks that the head
/// digests match. A copy into a store that already holds a prefix of the log carries on from
/// there, which keeps the downtime of a move to the time of the last copy.
struct CopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a log from a data directory into PostgreSQL, or back.",
        discussion: """
            FROM and TO are each a data directory (its log is <DIR>/log) or a postgres:// URL. \
            The target must be empty or hold a prefix of the source's log; the copy carries on \
            after it. Copy from a directory while its server runs to move the bulk, then stop \
            the server and copy again: only the tail moves. Then start `serve --data DIR \
            --postgres URL` on the same directory (its log is now the database's cache). Keys \
            and secrets are not in the log: keep <DIR>/keys and <DIR>/master-key with the node. \
            Exit codes: 0 copied and the heads match, 1 the logs differ, 2 usage or I/O error.
            """
    )

    @Option(help: ArgumentHelp("Source: a data directory or a postgres:// URL.", valueName: "FROM"))
    var from: String
    @Option(help: ArgumentHelp("Target: a data directory or a postgres:// URL.", valueName: "TO"))
    var to: String

    func run() async throws {
        try await withToolExitCodesAsync {
            let source = from.contains("://") ? try PostgresURL(from) : nil
            let target = to.contains("://") ? try PostgresURL(to) : nil
            let progress = ProgressBar(label: "copy")
            let out = StandardOutput()
            let copied: (source: (UInt64, [UInt8]), target: (UInt64, [UInt8]))
            switch (source, target) {
            case let (nil, .some(url)):
                let logDirectory = try DataDirectoryOptions(path: from).existingLogDirectory()
                copied = try await withPostgresLog(url) { store in
                    let heads = try await copyInto(store, from: logDirectory, progress)
                    if let keys = try Self.copyKeys(from: from + "/keys", into: store) {
                        out.appendLine("user keys:          \(keys) copied, still wrapped by the source's master key")
                    }
                    return heads
                }
            case let (.some(url), nil):
                let held: DataDirectoryLock
                do { held = try DataDirectoryLock.acquire(to) } catch { throw ToolError.usage("\(error)") }
                defer { withExtendedLifetime(held) {} }
                copied = try await withPostgresLog(url) { store in
                    let heads = try await copyFrom(store, into: to + "/log", progress)
                    if let keys = try Self.copyKeys(from: store, into: to) {
                        out.appendLine("user keys:          \(keys) copied, still wrapped by the nodes' master key")
                    }
                    return heads
                }
            default:
                throw ToolError.usage("copy goes between a data directory and a postgres:// URL (one of each)")
            }
            progress.finish()
            out.appendLine("source head digest: \(copied.source.0) \(hexString(copied.source.1))")
            out.appendLine("target head digest: \(copied.target.0) \(hexString(copied.target.1))")
            guard copied.source == copied.target else {
                out.flush()
                throw ToolError.problem("the head digests differ: the copy is not the source's log")
            }
            out.appendLine("heads match")
            out.flush()
        }
    }

    /// Appends the directory's batches after the database's head, in transactions of a few MiB.
    private func copyInto(_ store: PostgresLog, from logDirectory: String, _ progress: ProgressBar) async throws
        -> (source: (UInt64, [UInt8]), target: (UInt64, [UInt8])) {
        let start = try await store.head()
        progress.setTotal(LogHeadEstimate.lastSeq(logDirectory: logDirectory))
        let reader = LogBatchReader(directory: logDirectory)
        var page: [StoredBatch] = []
        var pageBytes = 0
        while true {
            let batches = try reader.next(limit: 256)
            if batches.isEmpty { break }
            for batch in batches {
                if batch.lastSeq <= start.seq {
                    if batch.lastSeq == start.seq && batch.headerHash != start.hash {
                        throw ToolError.problem("the database holds another log (they differ at seq \(start.seq))")
                    }
                    continue
                }
                if batch.firstSeq <= start.seq {
                    throw ToolError.problem("the database's head (seq \(start.seq)) is not a batch boundary of this log")
                }
                page.append(batch)
                pageBytes += batch.bytes.count
            }
            if pageBytes >= 4 << 20 {
                try await store.insert(page)
                page.removeAll(keepingCapacity: true)
                pageBytes = 0
            }
            progress.update(reader.lastSeq)
        }
        if reader.lastSeq < start.seq {
            throw ToolError.problem("the database's log (head seq \(start.seq)) is longer than this one (\(reader.lastSeq))")
        }
        try await store.insert(page)
        let head = try await store.head()
        return ((reader.lastSeq, reader.lastHash), (head.seq, head.hash))
    }

    /// Fetches the database's batches after the directory's head into plain segment files.
    private func copyFrom(_ store: PostgresLog, into logDirectory: String, _ progress: ProgressBar) async throws
        -> (source: (UInt64, [UInt8]), target: (UInt64, [UInt8])) {
        let head = try await store.head()
        progress.setTotal(head.seq)
        let written = try await store.download(into: logDirectory) { seq, _ in progress.update(seq) }
        return ((head.seq, head.hash), (written.seq, written.hash))
    }
}

/// Opens the database's log for `body` and closes it after, whether `body` throws or not.
func withPostgresLog<T>(_ url: PostgresURL, _ body: (PostgresLog) async throws -> T) async throws -> T {
    let store = try await PostgresLog.open(url: url)
    do {
        let result = try await body(store)
        await store.close()
        return result
    } catch {
        await store.close()
        throw error
    }
}

extension CopyCommand {
    /// Copies the wrapped user keys and the name index key of a key directory into the
    /// database, and removes the database's keys of users the directory no longer has (deleted
    /// since an earlier copy). Nil when the directory has no key store.
    static func copyKeys(from keyDirectory: String, into store: PostgresLog) throws -> Int? {
        let files = FileKeyPersistence(directory: keyDirectory)
        let database = PostgresKeyPersistence(log: store)
        guard let index = files.existingIndexKey() else { return nil }
        guard try database.indexKey(orStore: { index }) == index else {
            throw ToolError.problem("the database holds another name index key: it is not this log's key store")
        }
        let entries = try files.loadAll(repair: false)
        try database.add(entries)
        let kept = Set(entries.map(\.user))
        try database.remove(try database.loadAll(repair: false).map(\.user).filter { !kept.contains($0) })
        return entries.count
    }

    /// Copies the database's wrapped keys into `<dataDirectory>/keys`, made afresh; nil when
    /// the database has no key store.
    static func copyKeys(from store: PostgresLog, into dataDirectory: String) throws -> Int? {
        guard let index = try store.existingIndexKey() else { return nil }
        let files = try FileKeyPersistence.open(dataDirectory: dataDirectory)
        guard try files.indexKey(orStore: { index }) == index else {
            throw ToolError.problem("\(files.directory) holds another key store")
        }
        let entries = try PostgresKeyPersistence(log: store).loadAll(repair: false)
        try files.remove(try files.loadAll(repair: false).map(\.user))
        try files.add(entries)
        return entries.count
    }
}
