import Foundation

/// What bringing a local log directory level with PostgreSQL did.
public struct CacheSyncReport: Sendable {
    /// Seqs the directory held past the database's head: written locally by a writer that died
    /// before its commit, so never acknowledged. They were cut.
    public var cut: ClosedRange<UInt64>?
    /// Seqs fetched from the database.
    public var fetched: ClosedRange<UInt64>?
    /// True when the directory disagreed with the database and was emptied and fetched again.
    public var refetched = false
    public var head: UInt64 = 0
}

/// Why a directory cannot be brought level with the database.
public enum CacheSyncError: Error, CustomStringConvertible {
    case notACache(directory: String, localSeq: UInt64, remoteSeq: UInt64)
    case otherDatabase(directory: String)
    case diverged(directory: String, seq: UInt64)

    public var description: String {
        switch self {
        case let .notACache(directory, local, remote):
            return "\(directory) holds a file log (head seq \(local)) that is not the database's (head seq \(remote)); "
                + "to move it into PostgreSQL run `chat-es copy --from <data dir> --to <postgres URL>` while no server runs, "
                + "or give --data an empty directory"
        case let .otherDatabase(directory):
            return "\(directory) caches another PostgreSQL log; give --data an empty directory or remove its log/"
        case let .diverged(directory, seq):
            return "\(directory) and the database disagree at seq \(seq): they are not copies of one log"
        }
    }
}

extension PostgresLog {
    static let markerName = "postgres-log-id"

    /// Makes the segments in `directory` equal to the database's log, so replay, history and
    /// snapshots read local files: cuts batches past the database's head, fetches the ones
    /// after the local head. The directory is marked with the database's log id at first use;
    /// an unmarked directory is adopted only when it is empty or exactly the database's log (a
    /// finished `copy`), so a file log is never cut because a URL pointed at the wrong database.
    public func syncCache(directory: String, progress: ((UInt64, UInt64) -> Void)? = nil) async throws -> CacheSyncReport {
        try FileIO.makeDirectory(directory)
        let markerPath = directory + "/" + Self.markerName
        let marker = (try? String(contentsOfFile: markerPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let local = try LogCache.head(directory: directory)
        let remote = try await head()
        var report = CacheSyncReport()
        if marker == nil {
            if local.seq > 0 && (local.seq != remote.seq || local.hash != remote.hash) {
                throw CacheSyncError.notACache(directory: directory, localSeq: local.seq, remoteSeq: remote.seq)
            }
            try FileIO.replaceDurably(markerPath, with: Array((logId + "\n").utf8))
        } else if marker != logId {
            throw CacheSyncError.otherDatabase(directory: directory)
        }
        var from = local.seq
        if local.seq > remote.seq {
            if try LogCache.hash(directory: directory, endingAt: remote.seq) == remote.hash {
                try LogCache.cut(directory: directory, after: remote.seq)
                report.cut = (remote.seq + 1)...local.seq
                from = remote.seq
            } else {
                try LogCache.cut(directory: directory, after: 0)
                report.refetched = true
                from = 0
            }
        } else if try await hash(endingAt: local.seq) != local.hash {
            // The database was restored to another history: what it holds is the truth.
            try LogCache.cut(directory: directory, after: 0)
            report.refetched = true
            from = 0
        }
        report.fetched = try await fetch(into: directory, after: from, through: remote.seq, progress: progress)
        report.head = remote.seq
        return report
    }

    /// Copies the database's log into `directory`, which must be empty or hold a prefix of it;
    /// returns the head (seq, header hash) written.
    public func download(into directory: String, progress: ((UInt64, UInt64) -> Void)? = nil) async throws -> (seq: UInt64, hash: [UInt8]) {
        try FileIO.makeDirectory(directory)
        let local = try LogCache.head(directory: directory)
        let remote = try await head()
        guard local.seq <= remote.seq, try await hash(endingAt: local.seq) == local.hash else {
            throw CacheSyncError.diverged(directory: directory, seq: local.seq)
        }
        _ = try await fetch(into: directory, after: local.seq, through: remote.seq, progress: progress)
        return try LogCache.head(directory: directory)
    }

    private func fetch(into directory: String, after start: UInt64, through end: UInt64,
                       progress: ((UInt64, UInt64) -> Void)?) async throws -> ClosedRange<UInt64>? {
        var at = start
        guard at < end else { return nil }
        let appender = try LogCache.Appender(directory: directory)
        defer { appender.close() }
        while at < end {
            let page = try await batches(after: at, limit: 2000)
            guard let last = page.last else { break }
            try appender.append(page)
            at = last.lastSeq
            progress?(at, end)
        }
        return at > start ? (start + 1)...at : nil
    }
}
