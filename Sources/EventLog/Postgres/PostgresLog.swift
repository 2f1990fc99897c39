import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO

/// The log's batches in PostgreSQL: table `chat_es_batches`, one row per batch holding the same
/// bytes as a segment file (header frame with the hash chain, then the LZ4 frame), keyed by its
/// first seq, with its predecessor's header hash UNIQUE. Those two keys fence writers: a writer
/// that lost its place can never append after another took it, and a reader that pages by
/// `first_seq > head` never skips a batch, since seqs come from the chain, not from a sequence
/// whose values may commit out of order.
///
/// It is also the `BatchMirror` of a server whose local segments are a cache: the writer thread
/// calls `store`, which waits out an outage of the database (`isAvailable` is false meanwhile).
public final class PostgresLog: BatchMirror, @unchecked Sendable {
    public let url: PostgresURL
    /// The id of the log this database holds, made at its first use.
    public private(set) var logId = ""
    private let logger: Logger
    /// The database connections' own event loop, one per process and never shut down (a
    /// query of a closing log may still be on it): a thread blocked on a query (the log
    /// writer, a key written inside the Ledger) waits for this loop only, never for the
    /// server's loops or Swift's task pool, so waiting cannot deadlock them.
    static let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let lock = NSLock()
    private var connection: EventLoopFuture<PostgresConnection>?
    private var available = true
    /// A probe is scheduled to find out when an unreachable database is back.
    private var probing = false
    private var closed = false
    private var nextConnectionId = 1
    /// The id of the connection queries go to now (nil while there is none).
    private var openConnectionId: Int?

    private init(url: PostgresURL, logger: Logger) {
        self.url = url
        self.logger = logger
    }

    /// Connects, creates the tables if they are missing, and reads the log id.
    public static func open(url: PostgresURL, logger: Logger = Logger(label: "chat-es.postgres")) async throws -> PostgresLog {
        let log = PostgresLog(url: url, logger: logger)
        do {
            try await log.prepareSchema()
        } catch {
            await log.close()
            throw error
        }
        return log
    }

    /// False while the database cannot be reached: the server answers 503 and acknowledges nothing.
    public var isAvailable: Bool { lock.withLock { available } }

    /// True once `close` was called.
    public var isClosed: Bool { lock.withLock { closed } }

    /// Closes the connection; a `store` waiting out an outage gives up.
    public func close() async {
        let connection = lock.withLock { () -> EventLoopFuture<PostgresConnection>? in
            defer { self.connection = nil }
            if closed { return nil }
            closed = true
            return self.connection
        }
        if let open = try? await connection?.get() { try? await open.close() }
    }

    // MARK: Reading

    /// The last seq stored and its batch header hash; (0, zeros) when empty.
    public func head() async throws -> (seq: UInt64, hash: [UInt8]) {
        let result = try await query("SELECT last_seq, header_hash FROM chat_es_batches ORDER BY first_seq DESC LIMIT 1")
        guard let row = result.rows.first else { return (0, BatchHeader.zeroHash) }
        let (seq, hash) = try row.decode((Int64, ByteBuffer).self)
        return (UInt64(seq), Array(hash.readableBytesView))
    }

    /// The header hash of the batch ending at `seq`, nil when no stored batch ends there.
    public func hash(endingAt seq: UInt64) async throws -> [UInt8]? {
        if seq == 0 { return BatchHeader.zeroHash }
        let result = try await query("SELECT header_hash FROM chat_es_batches WHERE last_seq = \(Int64(seq))")
        return try result.rows.first.map { Array(try $0.decode(ByteBuffer.self).readableBytesView) }
    }

    /// Up to `limit` batches after `seq`, in order, about `maxBytes` at most (one batch at least).
    public func batches(after seq: UInt64, limit: Int, maxBytes: Int = 16 << 20) async throws -> [StoredBatch] {
        // Paged by size in SQL too, so one page never holds much more than `maxBytes`.
        let result = try await query("""
            SELECT first_seq, last_seq, prev_hash, header_hash, body FROM (
                SELECT first_seq, last_seq, prev_hash, header_hash, body,
                       sum(length(body)) OVER (ORDER BY first_seq) - length(body) AS before
                FROM (SELECT * FROM chat_es_batches WHERE first_seq > \(Int64(seq))
                      ORDER BY first_seq LIMIT \(Int64(limit))) page) sized
            WHERE before < \(Int64(maxBytes)) ORDER BY first_seq
            """)
        var out: [StoredBatch] = []
        for row in result.rows {
            let (first, last, prev, hash, body) = try row.decode((Int64, Int64, ByteBuffer, ByteBuffer, ByteBuffer).self)
            out.append(StoredBatch(firstSeq: UInt64(first), lastSeq: UInt64(last),
                                   prevHash: Array(prev.readableBytesView), headerHash: Array(hash.readableBytesView),
                                   bytes: Array(body.readableBytesView)))
        }
        return out
    }

    // MARK: Writing

    /// Appends `batches` in one transaction; each must continue the stored chain. They go
    /// `batchesPerStatement` to a statement: a copy of a long log would otherwise wait for one
    /// round trip per batch (about 1,200 batches/s here).
    public func insert(_ batches: [StoredBatch]) async throws {
        guard !batches.isEmpty else { return }
        for (before, batch) in zip(batches, batches.dropFirst())
        where batch.firstSeq != before.lastSeq + 1 || batch.prevHash != before.headerHash {
            throw PostgresLogError.damaged("batch \(batch.firstSeq)…\(batch.lastSeq) does not continue batch \(before.firstSeq)…\(before.lastSeq)")
        }
        try await query("BEGIN")
        do {
            for start in stride(from: 0, to: batches.count, by: Self.batchesPerStatement) {
                let run = batches[start..<min(start + Self.batchesPerStatement, batches.count)]
                let stored = try await query(Self.insertQuery(run)).rows.first?.decode(Int64.self)
                guard stored == Int64(run.count) else {
                    throw PostgresLogError.fenced(seq: run.first!.firstSeq)
                }
            }
            try await query("COMMIT")
        } catch {
            _ = try? await query("ROLLBACK")
            throw error
        }
    }

    /// Batches per insert statement of `insert`: five parameters each.
    static let batchesPerStatement = 1000

    /// Rows for `batches`, which continue each other (checked by the caller), stored only if
    /// the first continues the stored chain: the condition of `insertQuery(_:)` for one batch,
    /// asked once of the table as it was before the statement. Answers one row: how many were
    /// stored (all or none).
    static func insertQuery(_ batches: ArraySlice<StoredBatch>) -> PostgresQuery {
        let first = batches.first!
        var binds = PostgresBindings(capacity: 5 * batches.count + 2)
        binds.append(Int64(first.firstSeq))
        binds.append(ByteBuffer(bytes: first.prevHash))
        var rows: [String] = []
        rows.reserveCapacity(batches.count)
        for batch in batches {
            let at = binds.count
            binds.append(Int64(batch.firstSeq))
            binds.append(Int64(batch.lastSeq))
            binds.append(ByteBuffer(bytes: batch.prevHash))
            binds.append(ByteBuffer(bytes: batch.headerHash))
            binds.append(ByteBuffer(bytes: batch.bytes))
            rows.append("($\(at + 1)::bigint, $\(at + 2)::bigint, $\(at + 3)::bytea, $\(at + 4)::bytea, $\(at + 5)::bytea)")
        }
        return PostgresQuery(unsafeSQL: """
            WITH stored AS (
                INSERT INTO chat_es_batches (first_seq, last_seq, prev_hash, header_hash, body)
                SELECT * FROM (VALUES \(rows.joined(separator: ", "))) AS page(first_seq, last_seq, prev_hash, header_hash, body)
                WHERE ($1::bigint = 1 AND NOT EXISTS (SELECT 1 FROM chat_es_batches))
                   OR EXISTS (SELECT 1 FROM chat_es_batches WHERE last_seq = $1::bigint - 1 AND header_hash = $2::bytea)
                RETURNING last_seq),
            announced AS (SELECT pg_notify('chat_es_log', max(last_seq)::text) FROM stored)
            SELECT (SELECT count(*) FROM stored) FROM announced
            """, binds: binds)
    }

    /// `BatchMirror`: stores one batch, retrying through an outage until it is stored, the log
    /// is closed, or another writer is found in its place (then it throws, for good).
    public func store(_ batch: StoredBatch) throws {
        var pause = 0.02
        while true {
            do {
                try storeOnce(batch)
                lock.withLock { available = true }
                return
            } catch let error as PostgresLogError where !Self.isTransient(error) {
                throw error
            } catch where !Self.isTransient(error) {
                // A statement the database refuses for good would be refused forever.
                throw error
            } catch {
                markUnavailable(error)
                dropConnection()
                if lock.withLock({ closed }) { throw PostgresLogError.closed }
                Thread.sleep(forTimeInterval: pause)
                pause = min(pause * 2, 1.0)
            }
        }
    }

    /// One attempt, blocking. A primary-key or predecessor conflict means the row exists: it
    /// is ours when an earlier attempt committed before its answer was lost, otherwise another
    /// writer's.
    private func storeOnce(_ batch: StoredBatch) throws {
        do {
            let inserted = try blocking(Self.insertQuery(batch))
            if !inserted.rows.isEmpty { return }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {}
        // Either the chain moved on (another writer) or this batch is already stored.
        let stored = try blocking("SELECT header_hash FROM chat_es_batches WHERE first_seq = \(Int64(batch.firstSeq))")
        if let row = stored.rows.first, try Array(row.decode(ByteBuffer.self).readableBytesView) == batch.headerHash {
            return
        }
        throw PostgresLogError.fenced(seq: batch.firstSeq)
    }

    /// One row; refused (no row returned) unless it continues the stored chain: the first batch
    /// of an empty table, or right after the batch whose header hash is its predecessor's. The
    /// same statement announces the batch to other nodes (delivered at commit).
    static func insertQuery(_ batch: StoredBatch) -> PostgresQuery {
        """
        WITH stored AS (
            INSERT INTO chat_es_batches (first_seq, last_seq, prev_hash, header_hash, body)
            SELECT \(Int64(batch.firstSeq)), \(Int64(batch.lastSeq)), \(ByteBuffer(bytes: batch.prevHash)),
                   \(ByteBuffer(bytes: batch.headerHash)), \(ByteBuffer(bytes: batch.bytes))
            WHERE (\(Int64(batch.firstSeq)) = 1 AND NOT EXISTS (SELECT 1 FROM chat_es_batches))
               OR EXISTS (SELECT 1 FROM chat_es_batches WHERE last_seq = \(Int64(batch.firstSeq)) - 1
                          AND header_hash = \(ByteBuffer(bytes: batch.prevHash)))
            RETURNING first_seq, last_seq)
        SELECT first_seq, pg_notify('chat_es_log', last_seq::text) FROM stored
        """
    }

    // MARK: Connection

    private func prepareSchema() async throws {
        try await query("BEGIN")
        do {
            // Two nodes starting on a new database at once would race on CREATE TABLE.
            try await query("SELECT pg_advisory_xact_lock(7270001)")
            try await query("""
                CREATE TABLE IF NOT EXISTS chat_es_meta (key text PRIMARY KEY, value text NOT NULL)
                """)
            try await query("""
                CREATE TABLE IF NOT EXISTS chat_es_batches (
                    first_seq bigint PRIMARY KEY CHECK (first_seq > 0),
                    last_seq bigint NOT NULL CHECK (last_seq >= first_seq),
                    prev_hash bytea NOT NULL UNIQUE,
                    header_hash bytea NOT NULL UNIQUE,
                    body bytea NOT NULL)
                """)
            try await query("CREATE UNIQUE INDEX IF NOT EXISTS chat_es_batches_last_seq ON chat_es_batches (last_seq)")
            try await query("""
                CREATE TABLE IF NOT EXISTS chat_es_user_keys (user_id bigint PRIMARY KEY, wrapped bytea NOT NULL)
                """)
            try await query("""
                CREATE TABLE IF NOT EXISTS chat_es_nodes (
                    epoch bigint PRIMARY KEY, node text NOT NULL, address text NOT NULL,
                    heartbeat timestamptz NOT NULL, connections text NOT NULL DEFAULT '')
                """)
            let id = UUID().uuidString.lowercased()
            try await query("INSERT INTO chat_es_meta (key, value) VALUES ('log_id', \(id)) ON CONFLICT DO NOTHING")
            let result = try await query("SELECT value FROM chat_es_meta WHERE key = 'log_id'")
            logId = try result.rows.first?.decode(String.self) ?? ""
            try await query("COMMIT")
        } catch {
            _ = try? await query("ROLLBACK")
            throw error
        }
    }

    /// Runs `query` and blocks the calling thread until the database answers. Waits on a
    /// semaphore, not `EventLoopFuture.wait()`: the caller may be on one of the server's event
    /// loops (the Ledger runs there), where NIO forbids `wait()`; the query runs on this log's
    /// own loop, so blocking the caller cannot hold it up. Losing the database marks the store
    /// unavailable until a probe reaches it again.
    func blocking(_ query: PostgresQuery) throws -> PostgresQueryResult {
        let done = DispatchSemaphore(value: 0)
        let outcome = QueryOutcome()
        run(query).whenComplete { result in
            outcome.result = result
            done.signal()
        }
        done.wait()
        switch outcome.result! {
        case let .success(result):
            return result
        case let .failure(error):
            if Self.isTransient(error) { markUnavailable(error) }
            throw error
        }
    }

    /// True for errors worth retrying: the connection, or the server's classes for a shutdown
    /// or restart (57), lack of resources (53), a lost connection (08) or a rolled-back
    /// transaction (40).
    static func isTransient(_ error: any Error) -> Bool {
        if isConnectionFailure(error) { return true }
        if case .timedOut? = error as? PostgresLogError { return true }
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return ["08", "40", "53", "57"].contains(String(state.prefix(2)))
    }

    /// True for errors of reaching the database, as opposed to a statement it refused.
    static func isConnectionFailure(_ error: any Error) -> Bool {
        if let error = error as? PSQLError { return error.code != .server }
        return !(error is PostgresLogError)
    }

    /// Marks the store unavailable (the server answers 503 to writes) and probes every 500 ms
    /// until the database answers again. For failures found elsewhere than by this log's own
    /// queries (another connection of the node); errors that are not the connection's are ignored.
    public func noteFailure(_ error: any Error) {
        if Self.isTransient(error) { markUnavailable(error) }
    }

    func markUnavailable(_ error: any Error) {
        let first = lock.withLock { () -> Bool in
            defer {
                available = false
                probing = true
            }
            return !probing && !closed
        }
        guard first else { return }
        logger.error("PostgreSQL unavailable, answering 503 to writes and holding acknowledgements until it returns: \(Self.describe(error))")
        probe()
    }

    private func probe() {
        Self.loops.next().scheduleTask(in: .milliseconds(500)) {
            self.run("SELECT 1").whenComplete { result in
                let again = self.lock.withLock { () -> Bool in
                    if self.closed { self.probing = false; return false }
                    if case .success = result {
                        self.available = true
                        self.probing = false
                        return false
                    }
                    return true
                }
                if case .success = result { self.logger.notice("PostgreSQL reachable again") }
                if again {
                    self.dropConnection()
                    self.probe()
                }
            }
        }
    }

    @discardableResult
    func query(_ query: PostgresQuery, timeout: Double = 15) async throws -> PostgresQueryResult {
        try await run(query, timeout: timeout).get()
    }

    /// Runs `query` on the connection, connecting first when there is none. An answer that
    /// has not come after `timeout` seconds fails the query and drops the connection: a
    /// connection the server ended while this process was paused must not hold a caller forever.
    func run(_ query: PostgresQuery, timeout: Double = 15) -> EventLoopFuture<PostgresQueryResult> {
        let loop = Self.loops.next()
        let promise = loop.makePromise(of: PostgresQueryResult.self)
        let done = NIOLockedValueBox(false)
        let finish: @Sendable (Result<PostgresQueryResult, any Error>) -> Bool = { result in
            let first = done.withLockedValue { d -> Bool in
                defer { d = true }
                return !d
            }
            if first { promise.completeWith(result) }
            return first
        }
        let timer = loop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
            if finish(.failure(PostgresLogError.timedOut(seconds: timeout))) {
                self.logger.error("PostgreSQL did not answer within \(timeout) s: dropping the connection")
                self.dropConnection()
            }
        }
        connected().flatMap { $0.query(query, logger: self.logger) }.whenComplete { result in
            timer.cancel()
            _ = finish(result)
        }
        return promise.futureResult
    }

    private func connected() -> EventLoopFuture<PostgresConnection> {
        lock.withLock {
            let loop = Self.loops.next()
            if closed { return loop.makeFailedFuture(PostgresLogError.closed) }
            if let connection { return connection }
            let id = nextConnectionId
            nextConnectionId += 1
            let fresh = PostgresConnection.connect(on: loop, configuration: url.configuration, id: id, logger: logger)
            connection = fresh
            openConnectionId = id
            // A failed connect or a connection that closes is forgotten, so the next query connects again.
            fresh.whenComplete { result in
                switch result {
                case .failure: self.forget(fresh)
                case let .success(open): open.closeFuture.whenComplete { _ in self.forget(fresh) }
                }
            }
            return fresh
        }
    }

    private func forget(_ connection: EventLoopFuture<PostgresConnection>) {
        lock.withLock {
            if self.connection === connection {
                self.connection = nil
                openConnectionId = nil
            }
        }
    }

    /// The id of the connection queries go to now; a session lock taken on an earlier one is gone.
    public var currentConnectionId: Int? { lock.withLock { openConnectionId } }

    private func dropConnection() {
        let old = lock.withLock { () -> EventLoopFuture<PostgresConnection>? in
            defer {
                connection = nil
                openConnectionId = nil
            }
            return connection
        }
        old?.whenSuccess { open in
            let closing: EventLoopFuture<Void> = open.close()
            _ = closing
        }
    }

    /// What went wrong, for a log line: the server's message when it sent one.
    public static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }
}

/// Why a batch could not be stored, for good.
public enum PostgresLogError: Error, CustomStringConvertible {
    /// Another writer stored a different batch at this position.
    case fenced(seq: UInt64)
    case closed
    case damaged(String)
    /// A query got no answer in time (the connection is dropped).
    case timedOut(seconds: Double)

    public var description: String {
        switch self {
        case let .fenced(seq): return "another writer stored a different batch at seq \(seq) in PostgreSQL"
        case .closed: return "the PostgreSQL log is closed"
        case let .damaged(why): return why
        case let .timedOut(seconds): return "PostgreSQL did not answer within \(seconds) s"
        }
    }
}

/// A query's result handed from the log's event loop to the thread blocked in `blocking` (the
/// semaphore orders the two accesses).
private final class QueryOutcome: @unchecked Sendable {
    var result: Result<PostgresQueryResult, any Error>?
}
