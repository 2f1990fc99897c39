import EventLog
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Projections

/// The running service behind the routes: the Ledger once replay is done, tokens, passwords,
/// the socket hub and the limits. Until `ready` it answers 503.
public final class ChatService: @unchecked Sendable {
    public let config: ServerConfig
    let tokens: TokenService
    let hasher: PasswordHasher
    public let hub = Hub()
    /// Wakes `expireSessions` at the next session expiry.
    let expiryTimer = SessionExpiryTimer()
    let userFailures: RateLimiter
    let addressFailures: RateLimiter
    let metrics = ServiceMetrics()
    let logger: Logger
    private let lock = NSLock()
    let stopping = NIOLockedValueBox(false)
    private var _ledger: Ledger?
    private var _deliveries: DurableDeliveries?
    private var _replayed: UInt64 = 0
    private var _logHead: UInt64 = 0
    /// The last start's replay: seconds and events.
    private var _lastStart: (seconds: Double, events: UInt64) = (0, 0)
    private var _snapshots: SnapshotScheduler?
    /// The database holding the log, when there is one (`ServerConfig.postgres`).
    private var _store: PostgresLog?
    /// This node's part among the nodes serving that database.
    private var _cluster: ClusterNode?
    private var restarting = false
    /// Held from the first start on (a start after `restartFromStore` keeps it).
    private var directoryLock: DataDirectoryLock?

    public init(config: ServerConfig, logger: Logger) async {
        self.config = config
        self.logger = logger
        tokens = await TokenService(secret: config.secret, accessLifetime: config.accessLifetime,
                                    refreshLifetime: config.refreshLifetime)
        hasher = PasswordHasher(iterations: config.passwordIterations)
        userFailures = RateLimiter(rate: config.loginFailuresPerUser / 60, burst: config.loginFailuresPerUser)
        addressFailures = RateLimiter(rate: config.loginFailuresPerAddress / 60, burst: config.loginFailuresPerAddress)
    }

    public var ledger: Ledger? { lock.withLock { _ledger } }
    /// This node's part among several on a PostgreSQL log.
    var cluster: ClusterNode? { lock.withLock { _cluster } }
    /// Socket frames waiting for their events to be durable; set with the Ledger.
    var deliveries: DurableDeliveries? { lock.withLock { _deliveries } }

    /// Opens the log, replays it into the views (reporting progress), opens the key store and
    /// finishes erasures a crash interrupted, appends `ServerStarted`, and starts serving.
    /// Refuses a log from before personal fields were encrypted, naming the command that
    /// rewrites it.
    public func start() async throws {
        if lock.withLock({ directoryLock }) == nil {
            let taken = try DataDirectoryLock.acquire(config.dataDirectory)
            lock.withLock { directoryLock = taken }
        }
        let logDir = config.dataDirectory + "/log"
        guard let durability = Durability(parsing: config.durability) else {
            throw APIError(.badRequest, "config", "unknown --fsync policy \(config.durability)")
        }
        var options = EventLogOptions(durability: durability)
        if let url = config.postgres {
            // Names this process's connections, so other nodes can end them if it hangs.
            let name = "chat-es \(try NodeIdentity.load(dataDirectory: config.dataDirectory)) \(UUID().uuidString.prefix(8).lowercased())"
            let store = try await openStore(url.named(name), logDirectory: logDir)
            lock.withLock { _store = store }
            // The database's commit is what makes a batch durable; the local files are a cache
            // that the next start brings level with it, so they are not synced.
            options = EventLogOptions(durability: .never, mirror: store)
        }
        let opening = Date()
        let log = try EventLog.open(directory: logDir, options: options)
        if !log.recovery.isClean { logger.warning("log recovery: \(log.recovery.description)") }
        let total = log.durableSeq
        logger.info("log opened in \(String(format: "%.3f", Date().timeIntervalSince(opening))) s (head at seq \(total))")
        lock.withLock { _logHead = total }
        let started = Date()
        let loaded = ProjectionSet.loadNewestSnapshot(from: config.dataDirectory) { seq in try? log.chainHash(at: seq) }
        for (file, why) in loaded.skipped { logger.warning("snapshot \(file.name) skipped: \(why)") }
        var views = loaded.set ?? ProjectionSet()
        if let file = loaded.file {
            let age = Int(Date().timeIntervalSince1970 - file.modified)
            logger.info("starting from snapshot \(file.name) (seq \(file.seq), \(age) s old, read in \(String(format: "%.2f", Date().timeIntervalSince(started))) s); replaying the \(total - file.seq) events after it")
        } else {
            logger.info(loaded.skipped.isEmpty ? "no snapshot: replaying all \(total) events from \(logDir)"
                                               : "no usable snapshot: full replay of \(total) events from \(logDir)")
        }
        lock.withLock { _replayed = views.lastSeq }
        var lastReport = Date()
        let from = views.lastSeq + 1
        try views.replayInParallel(scan: { body in try log.scan(from: from, body) }, progress: { seq in
            self.lock.withLock { self._replayed = seq }
            if Date().timeIntervalSince(lastReport) > 1 {
                lastReport = Date()
                self.logger.info("replay at seq \(seq) of \(total)")
            }
        })
        let seconds = Date().timeIntervalSince(started)
        lock.withLock { _lastStart = (seconds, total - (from - 1)) }
        logger.info("started in \(String(format: "%.2f", seconds)) s (\(total - (from - 1)) events replayed); \(views.users.count) users, \(views.conversations.messageCount) messages")
        if views.plaintextRecords > 0 {
            await log.close()
            throw StartError.plaintextLog(dataDirectory: config.dataDirectory, records: views.plaintextRecords)
        }
        let keysStarted = Date()
        let keys = try openKeyStore(views: views)
        let timer = expiryTimer
        let ledger = Ledger(log: log, views: views, settings: LedgerSettings(refreshLifetime: config.refreshLifetime),
                            keys: keys, hub: hub, expiryScheduled: { timer.schedule(at: $0) })
        var cluster: ClusterNode?
        if let store = lock.withLock({ _store }) {
            let node = ClusterNode(store: store, side: try await PostgresLog.open(url: store.url, logger: logger),
                                   ledger: ledger, log: log, hub: hub, settings: config.cluster,
                                   address: "\(config.host):\(config.port)",
                                   nodeId: try NodeIdentity.load(dataDirectory: config.dataDirectory), logger: logger)
            node.onFailure = { [weak self] reason in
                Task { await self?.restartFromStore(reason) }
            }
            await node.start()
            cluster = node
            lock.withLock { _cluster = node }
        }
        if let cluster {
            let epoch = try await joinPatiently(cluster)
            cluster.startHeartbeat()
            logger.info("joined the nodes serving \(config.postgres.map { "\($0)" } ?? "") as epoch \(epoch)")
        } else {
            let seq = try await ledger.startEpoch()
            try await log.waitUntilDurable(seq)
        }
        let deliveries = DurableDeliveries(log: log, hub: hub, metrics: metrics)
        lock.withLock {
            _ledger = ledger
            _deliveries = deliveries
        }
        // The expiry pass runs on the timer's event loop, not Swift's shared pool, so a busy
        // pool cannot delay a session's end.
        let expiryExecutor = EventLoopTaskExecutor(timer.loop)
        timer.start { [weak self] in
            guard let self else { return }
            Task(executorPreference: expiryExecutor) { await self.expireSessions() }
        }
        await expireSessions()
        logger.info("keys, ledger and epoch ready in \(String(format: "%.3f", Date().timeIntervalSince(keysStarted))) s")
        // What reading the snapshot and the log needed and freed goes back to the system now,
        // not whenever malloc decides (a snapshot start would otherwise look bigger).
        trimHeap()
        let scheduler = SnapshotScheduler(dataDirectory: config.dataDirectory, log: log, policy: config.snapshots,
                                          logger: logger, startedFrom: loaded.file)
        lock.withLock { _snapshots = scheduler }
        scheduler.start()
        logger.info("serving on \(config.host):\(config.port)")
    }

    /// Connects to the database, waiting for it if it is down, and brings the local segments
    /// level with it.
    private func openStore(_ url: PostgresURL, logDirectory: String) async throws -> PostgresLog {
        var waited = 0
        let store: PostgresLog
        while true {
            do {
                store = try await PostgresLog.open(url: url, logger: logger)
                break
            } catch {
                if stopping.withLockedValue({ $0 }) { throw error }
                if waited % 10 == 0 {
                    logger.warning("PostgreSQL at \(url) unreachable, retrying: \(PostgresLog.describe(error))")
                }
                waited += 1
                try await Task.sleep(nanoseconds: 500_000_000)
            }
        }
        let started = Date()
        var lastReport = Date()
        let report: CacheSyncReport
        do {
            report = try await store.syncCache(directory: logDirectory) { seq, head in
                if Date().timeIntervalSince(lastReport) > 1 {
                    lastReport = Date()
                    self.logger.info("fetching the log from PostgreSQL: seq \(seq) of \(head)")
                }
            }
        } catch {
            await store.close()
            throw error
        }
        if let cut = report.cut {
            logger.warning("local cache: cut seqs \(cut.lowerBound)…\(cut.upperBound), written but never committed to PostgreSQL (never acknowledged)")
        }
        if report.refetched { logger.warning("local cache disagreed with PostgreSQL: emptied and fetched again") }
        let fetched = report.fetched.map { "fetched seqs \($0.lowerBound)…\($0.upperBound)" } ?? "nothing to fetch"
        logger.info("log in PostgreSQL at \(url) (log \(store.logId), head seq \(report.head)); local cache: \(fetched) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        return store
    }

    /// Joins the nodes, retrying for 30 s: the turn may be busy or the database briefly away.
    private func joinPatiently(_ cluster: ClusterNode) async throws -> UInt64 {
        let deadline = Date().addingTimeInterval(30)
        while true {
            do {
                return try await cluster.join()
            } catch {
                if Date() > deadline || stopping.withLockedValue({ $0 }) { throw error }
                logger.warning("joining the other nodes failed, retrying: \(error)")
                try await Task.sleep(nanoseconds: 500_000_000)
            }
        }
    }

    /// Marks a restart in progress; false if one already is.
    func beginRestart() -> Bool {
        lock.withLock {
            if restarting { return false }
            restarting = true
            return true
        }
    }

    func endRestart() { lock.withLock { restarting = false } }

    /// Takes the running Ledger, cluster part, store and snapshot scheduler out of service (it
    /// answers 503 until the next `start`).
    func takeRunningParts() -> (ledger: Ledger?, cluster: ClusterNode?, store: PostgresLog?, snapshots: SnapshotScheduler?) {
        lock.withLock {
            defer {
                _ledger = nil
                _deliveries = nil
                _cluster = nil
                _store = nil
                _snapshots = nil
            }
            return (_ledger, _cluster, _store, _snapshots)
        }
    }

    /// False while the database holding the log cannot be reached.
    var storeAvailable: Bool { lock.withLock { _store }?.isAvailable ?? true }

    /// The key store, with every active user's key present and no key left of an erased user
    /// (a crash between an erasure's event and its key's destruction, or a key store restored
    /// from an older backup) nor of a registration that never reached the log.
    private func openKeyStore(views: ProjectionSet) throws -> KeyStore {
        let master = try config.masterKey
            ?? MasterKey.load(dataDirectory: config.dataDirectory, environment: [:], create: true)!
        let keys: KeyStore
        if let store = lock.withLock({ _store }) {
            keys = try KeyStore.open(persistence: PostgresKeyPersistence(log: store), master: master)
        } else {
            keys = try KeyStore.open(dataDirectory: config.dataDirectory, master: master)
        }
        let missing = (0..<UInt32(views.users.count)).map { $0 + 1 }.filter { views.users.isActive($0) && !keys.hasKey($0) }
        if !missing.isEmpty {
            throw StartError.missingKeys(directory: keys.directory, users: missing)
        }
        // On a shared log, a key past the last registration may be another node's registration
        // in flight: only erased users' keys are surely left over.
        let shared = lock.withLock { _store } != nil
        let leftover = keys.userIds.filter { !views.users.isActive($0) && (!shared || views.users.exists($0)) }
        if !leftover.isEmpty {
            try keys.destroy(leftover)
            logger.notice("key store: destroyed \(leftover.count) keys of deleted accounts or unfinished registrations")
        }
        return keys
    }

    /// Ends the sessions that expired and re-arms the timer for the next expiry.
    func expireSessions() async {
        guard let ledger else { return }
        let now = currentMicros()
        let (presence, next) = await ledger.expireDue(now: now)
        for fanout in presence { hub.deliver(fanout) }
        if let next { expiryTimer.schedule(at: next) }
    }

    /// Closes every socket and flushes the log.
    public func shutdown() async {
        expiryTimer.cancel()
        beginShutdown()
        let snapshots = lock.withLock { _snapshots }
        snapshots?.stop()
        let (store, cluster) = lock.withLock { (_store, _cluster) }
        if let ledger {
            let epoch = await ledger.ownEpoch
            await ledger.log.close()
            await cluster?.stop(epoch: epoch)
            await writeShutdownSnapshot(ledger, snapshots: snapshots)
        }
        await store?.close()
        // The directory is free for the next server (the process usually ends here anyway).
        lock.withLock { directoryLock = nil }
    }

    /// At a graceful stop the views equal the flushed log: writing them is the cheapest
    /// snapshot there is (nothing to fold), and the next start replays nothing.
    private func writeShutdownSnapshot(_ ledger: Ledger, snapshots: SnapshotScheduler?) async {
        let views = await ledger.views
        let head = ledger.log.head
        guard ledger.log.failureReason == nil, views.lastSeq == head.seq, head.seq > (snapshots?.newest.seq ?? 0) else { return }
        do {
            let started = Date()
            let file = try views.writeSnapshot(to: config.dataDirectory, chainHash: head.hash)
            ProjectionSet.pruneSnapshots(in: config.dataDirectory, keep: config.snapshots.keep)
            snapshots?.noteWritten(file)
            logger.info("snapshot at seq \(head.seq) written at shutdown in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        } catch {
            logger.error("no snapshot at shutdown: \(error)")
        }
    }

    /// What `/healthz` and `/metrics` report of the start and of snapshots.
    var startReport: (head: UInt64, replayed: UInt64, seconds: Double, events: UInt64, snapshot: (seq: UInt64, age: Double)?) {
        lock.withLock { (_logHead, _replayed, _lastStart.seconds, _lastStart.events, _snapshots?.newest) }
    }

    /// Marks the service stopping and closes every socket with 1001.
    public func beginShutdown() {
        stopping.withLockedValue { $0 = true }
        // Closing sockets appends their disconnections, and the graceful stop waits for them:
        // with the database down they would wait for it forever. Give the held batch up (it was
        // never acknowledged; the next start closes those sockets anyway).
        // Watched for the rest of the stop, since the outage may show only when the
        // disconnections are written.
        if let store = lock.withLock({ _store }) {
            let logger = logger
            Task {
                while true {
                    if !store.isAvailable {
                        logger.warning("stopping while PostgreSQL is unavailable: what it has not committed is given up (never acknowledged)")
                        await store.close()
                        return
                    }
                    if store.isClosed { return }
                    try? await Task.sleep(nanoseconds: 100_000_000)
                }
            }
        }
        hub.closeAll()
    }

    /// The log's durable head (while replaying, the head the replay is heading for).
    var logPosition: UInt64 {
        if let ledger { return ledger.log.durableSeq }
        return lock.withLock { _logHead }
    }

    /// The crash test hook: dies at once, as `kill -9` would, if `config.crashPoint` names `point`.
    func crashPoint(_ point: String) {
        guard config.crashPoint == point else { return }
        logger.notice("crash point \(point): killing the process")
        kill(getpid(), SIGKILL)
    }

    /// Destroys `user`'s key in the key store's files (blocking I/O, on NIO's thread pool).
    func destroyKey(of user: UInt32, in keys: KeyStore) async throws {
        try await NIOThreadPool.singleton.runIfActive { try keys.destroy([user]) }
    }

    /// With the database holding the log: waits for `seq`'s commit, but answers 503 once the
    /// database is found unreachable and the commit has not come 2 s later (the event may
    /// still be committed when the database returns; the request was not acknowledged).
    private func durableOrUnavailable(_ seq: UInt64, log: EventLog) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let outcome = FirstOutcome(continuation)
            Task {
                do {
                    try await log.waitUntilDurable(seq)
                    outcome.resume(.success(()))
                } catch {
                    outcome.resume(.failure(error))
                }
            }
            Task {
                var unavailableFor = 0
                while !outcome.isResumed {
                    try? await Task.sleep(nanoseconds: 100_000_000)
                    unavailableFor = storeAvailable ? 0 : unavailableFor + 1
                    if unavailableFor >= 20 { outcome.resume(.failure(APIError.storeUnavailable)) }
                }
            }
        }
    }

    /// Waits until `seq` is durable; a failed writer turns into 503.
    func durable(_ seq: UInt64?) async throws {
        guard let seq, let ledger else { return }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            if lock.withLock({ _store }) != nil {
                try await durableOrUnavailable(seq, log: ledger.log)
            } else {
                try await ledger.log.waitUntilDurable(seq)
            }
        } catch let error as APIError {
            throw error
        } catch {
            logger.error("log writer failed: \(error)")
            throw APIError(.serviceUnavailable, "storage_unavailable", "The event log cannot store anything right now.")
        }
        metrics.appendLatency(DispatchTime.now().uptimeNanoseconds - started)
    }
}

/// Loads `CHAT_ES_SECRET`, or the key kept in `<data>/secret` (created once, mode 0600). Either
/// must hold at least 32 bytes (`SecretMaterial`); a shorter one is refused, never replaced.
public func loadSecret(dataDirectory: String, environment: [String: String]) throws -> [UInt8] {
    if let secret = environment["CHAT_ES_SECRET"], !secret.isEmpty {
        return try SecretMaterial.bytes(of: secret, source: "CHAT_ES_SECRET")
    }
    let path = dataDirectory + "/secret"
    if let data = FileManager.default.contents(atPath: path) {
        return try SecretMaterial.bytes(of: String(decoding: data, as: UTF8.self), source: path)
    }
    try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
    let secret = Array(SecretMaterial.randomHex().utf8)
    let temp = path + ".tmp"
    _ = FileManager.default.createFile(atPath: temp, contents: Data(secret), attributes: [.posixPermissions: 0o600])
    _ = rename(temp, path)
    return try SecretMaterial.bytes(of: String(decoding: secret, as: UTF8.self), source: path)
}

/// Hands freed heap pages back to the kernel (glibc's `malloc_trim`, looked up at run time:
/// `malloc.h` is not in the Glibc module).
func trimHeap() {
    typealias Trim = @convention(c) (Int) -> Int32
    if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }
}

/// Why `serve` will not start on a data directory; each message says what to do.
public enum StartError: Error, CustomStringConvertible {
    case plaintextLog(dataDirectory: String, records: UInt64)
    case missingKeys(directory: String, users: [UInt32])

    public var description: String {
        switch self {
        case let .plaintextLog(dir, records):
            return "\(dir)/log was written before personal fields were encrypted (\(records) plaintext records), "
                + "so deleting an account could not erase them. Rewrite it once, offline, with "
                + "`chat-es migrate --from \(dir) --to \(dir)-encrypted`, serve the new directory, and destroy the old one."
        case let .missingKeys(dir, users):
            let shown = users.prefix(10).map(String.init).joined(separator: ", ")
            return "the key store \(dir) has no key for \(users.count) active users (\(shown)\(users.count > 10 ? ", …" : "")): "
                + "their names and messages cannot be read. Was it restored from a backup older than the log? "
                + "Restore the newest copy of \(dir) (see README, \"Keys and backups\")."
        }
    }
}

/// Resumes a continuation with whichever of two racing tasks finishes first.
private final class FirstOutcome: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Error>?

    init(_ continuation: CheckedContinuation<Void, Error>) { self.continuation = continuation }

    var isResumed: Bool { lock.withLock { continuation == nil } }

    func resume(_ result: Result<Void, Error>) {
        let waiting = lock.withLock { () -> CheckedContinuation<Void, Error>? in
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(with: result)
    }
}
