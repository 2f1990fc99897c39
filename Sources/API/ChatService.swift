import EventLog
import Foundation
import Logging
import NIOConcurrencyHelpers
import Projections

/// The running service behind the routes: the Ledger once replay is done, tokens, passwords,
/// the socket hub and the limits. Until `ready` it answers 503.
public final class ChatService: @unchecked Sendable {
    public let config: ServerConfig
    let tokens: TokenService
    let hasher: PasswordHasher
    public let hub = Hub()
    let userFailures: RateLimiter
    let addressFailures: RateLimiter
    let metrics = ServiceMetrics()
    let logger: Logger
    private let lock = NSLock()
    let stopping = NIOLockedValueBox(false)
    private var _ledger: Ledger?
    private var _deliveries: DurableDeliveries?
    private var _replayed: UInt64 = 0

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
    /// Socket frames waiting for their events to be durable; set with the Ledger.
    var deliveries: DurableDeliveries? { lock.withLock { _deliveries } }

    /// Opens the log, replays it into the views (reporting progress), appends `ServerStarted`,
    /// and starts serving.
    public func start() async throws {
        let logDir = config.dataDirectory + "/log"
        guard let durability = Durability(parsing: config.durability) else {
            throw APIError(.badRequest, "config", "unknown --fsync policy \(config.durability)")
        }
        let log = try EventLog.open(directory: logDir, options: EventLogOptions(durability: durability))
        if !log.recovery.isClean { logger.warning("log recovery: \(log.recovery.description)") }
        let total = log.durableSeq
        logger.info("replaying \(total) events from \(logDir)")
        let started = Date()
        var lastReport = Date()
        let views = try ProjectionSet.rebuild(scan: { try log.scan(from: 1, $0) }, progress: { seq in
            self.lock.withLock { self._replayed = seq }
            if Date().timeIntervalSince(lastReport) > 1 {
                lastReport = Date()
                self.logger.info("replay at seq \(seq) of \(total)")
            }
        })
        let seconds = Date().timeIntervalSince(started)
        logger.info("replayed \(total) events in \(String(format: "%.2f", seconds)) s; \(views.users.count) users, \(views.conversations.messageCount) messages")
        let ledger = Ledger(log: log, views: views, settings: LedgerSettings(refreshLifetime: config.refreshLifetime))
        let seq = try await ledger.startEpoch()
        try await log.waitUntilDurable(seq)
        let deliveries = DurableDeliveries(log: log, hub: hub, metrics: metrics)
        lock.withLock {
            _ledger = ledger
            _deliveries = deliveries
        }
        logger.info("serving on \(config.host):\(config.port)")
    }

    /// Closes every socket and flushes the log.
    public func shutdown() async {
        beginShutdown()
        if let ledger { await ledger.log.close() }
    }

    /// Marks the service stopping and closes every socket with 1001.
    public func beginShutdown() {
        stopping.withLockedValue { $0 = true }
        hub.closeAll()
    }

    var logPosition: UInt64 {
        if let ledger { return ledger.log.durableSeq }
        return lock.withLock { _replayed }
    }

    /// Waits until `seq` is durable; a failed writer turns into 503.
    func durable(_ seq: UInt64?) async throws {
        guard let seq, let ledger else { return }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            try await ledger.log.waitUntilDurable(seq)
        } catch {
            logger.error("log writer failed: \(error)")
            throw APIError(.serviceUnavailable, "storage_unavailable", "The event log cannot store anything right now.")
        }
        metrics.appendLatency(DispatchTime.now().uptimeNanoseconds - started)
    }
}

/// Loads `CHAT_ES_SECRET`, or the key kept in `<data>/secret` (created once, mode 0600).
public func loadSecret(dataDirectory: String, environment: [String: String]) throws -> [UInt8] {
    if let secret = environment["CHAT_ES_SECRET"], !secret.isEmpty { return Array(secret.utf8) }
    let path = dataDirectory + "/secret"
    if let data = FileManager.default.contents(atPath: path), data.count >= 32 {
        return Array(data)
    }
    try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
    var rng = SystemRandomNumberGenerator()
    let hex = Array("0123456789abcdef")
    let secret = Array(String((0..<64).map { _ in hex[Int(rng.next(upperBound: UInt32(16)))] }).utf8)
    let temp = path + ".tmp"
    _ = FileManager.default.createFile(atPath: temp, contents: Data(secret), attributes: [.posixPermissions: 0o600])
    _ = rename(temp, path)
    return secret
}
