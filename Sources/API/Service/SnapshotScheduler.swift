import EventLog
import Foundation
import Logging
import Projections

/// When the server writes snapshots: every `events` new durable events or every `seconds`
/// (if anything happened), keeping the newest `keep`. `events == 0` turns the background
/// writer off (shutdown still writes one).
public struct SnapshotPolicy: Sendable {
    public var events: UInt64
    public var seconds: Double
    public var keep: Int

    public init(events: UInt64 = 1_000_000, seconds: Double = 600, keep: Int = 3) {
        self.events = events
        self.seconds = seconds
        self.keep = keep
    }
}

/// Writes snapshots in the background without touching the Ledger: on its own low-priority
/// thread it loads the newest snapshot, folds the durable log after it (read-only, through a
/// cursor), and writes the result. So a snapshot never holds the actor, never copies its
/// views, and never waits for an append; the price is a second fold of the new events and,
/// while it runs, a second copy of the state in memory.
final class SnapshotScheduler: @unchecked Sendable {
    private let dataDirectory: String
    private let log: EventLog
    private let policy: SnapshotPolicy
    private let logger: Logger
    private let condition = NSCondition()
    private var stopped = false
    private var running = false
    /// The newest snapshot written or started from: its seq and when.
    private var latest: (seq: UInt64, time: Double)

    init(dataDirectory: String, log: EventLog, policy: SnapshotPolicy, logger: Logger, startedFrom: SnapshotFile?) {
        self.dataDirectory = dataDirectory
        self.log = log
        self.policy = policy
        self.logger = logger
        latest = (startedFrom?.seq ?? 0, startedFrom?.modified ?? Date().timeIntervalSince1970)
    }

    /// The newest snapshot's seq and its age in seconds (since the process knows of it).
    var newest: (seq: UInt64, age: Double) {
        condition.withLock { (latest.seq, Date().timeIntervalSince1970 - latest.time) }
    }

    func start() {
        guard policy.events > 0 else { return }
        let thread = Thread { [self] in
            Thread.current.name = "chat-es snapshot"
            // Below the event loops and the log writer: serving comes first. (On Linux, nice
            // is per thread, and `who` 0 names the calling thread.)
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
            run()
        }
        thread.start()
    }

    /// Stops the thread and waits for a snapshot in progress to end.
    func stop() {
        condition.withLock {
            stopped = true
            condition.broadcast()
            while running { condition.wait() }
        }
    }

    /// Records a snapshot written elsewhere (the one at shutdown).
    func noteWritten(_ file: SnapshotFile) {
        condition.withLock { latest = (file.seq, file.modified) }
    }

    private func run() {
        while true {
            let due: Bool = condition.withLock {
                // Count new events five times a second: a lock and a read, nothing when idle.
                _ = condition.wait(until: Date().addingTimeInterval(min(policy.seconds, 0.2)))
                if stopped { return false }
                let pending = log.durableSeq - min(log.durableSeq, latest.seq)
                let age = Date().timeIntervalSince1970 - latest.time
                guard pending >= policy.events || (pending > 0 && age >= policy.seconds) else { return false }
                running = true
                return true
            }
            if condition.withLock({ stopped }) { return }
            guard due else { continue }
            do {
                if let file = try writeOne() { noteWritten(file) }
            } catch {
                logger.error("snapshot failed: \(error)")
            }
            condition.withLock {
                running = false
                condition.broadcast()
            }
        }
    }

    /// The newest usable snapshot plus the durable log after it, written as a new snapshot.
    private func writeOne() throws -> SnapshotFile? {
        let started = Date()
        let target = log.durableSeq
        let log = self.log
        var set = ProjectionSet.loadNewestSnapshot(from: dataDirectory, parallel: false) { seq in try? log.chainHash(at: seq) }.set
            ?? ProjectionSet()
        guard target > set.lastSeq else { return nil }
        let cursor = LogCursor(directory: log.directory, from: set.lastSeq + 1)
        try set.replay(scan: { body in _ = try cursor.poll(through: target, body) })
        guard set.lastSeq == target, cursor.lastBatchEnd == target else {
            logger.warning("snapshot skipped: the log read stopped at seq \(set.lastSeq), expected \(target)")
            return nil
        }
        let file = try set.writeSnapshot(to: dataDirectory, chainHash: cursor.lastBatchHash)
        ProjectionSet.pruneSnapshots(in: dataDirectory, keep: policy.keep)
        logger.info("snapshot at seq \(target) written in \(String(format: "%.2f", Date().timeIntervalSince(started))) s (\(file.size) bytes)")
        return file
    }
}
