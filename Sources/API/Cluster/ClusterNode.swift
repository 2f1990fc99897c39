import EventLog
import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import Projections

/// How a node shares its log with other nodes, and how quickly it finds a dead one.
public struct ClusterSettings: Sendable {
    /// The longest a node keeps the write turn while other commands keep coming, seconds.
    public var maxTurn: Double = 0.010
    /// How long a command waits for the turn before it answers 503, seconds.
    public var turnTimeout: Double = 5
    /// Heartbeat period, seconds.
    public var heartbeat: Double = 1
    /// A node without a heartbeat for this long is taken for dead, seconds.
    public var nodeTimeout: Double = 5
    /// How often a node looks for new batches when no notification came, seconds.
    public var poll: Double = 1

    public init() {}
}

/// One serving node of several on a PostgreSQL log. It runs one loop that either follows the
/// log (fetching what other nodes commit, on their notification or a poll, into the local cache
/// and the Ledger's views, and delivering it to this node's sockets), or, when a command waits,
/// takes the write turn: the database's advisory lock, then a catch-up, then the Ledger decides
/// every waiting command, then the turn closes once their batches are committed.
///
/// The lock is kept after a turn until another node asks for it (on `turnChannel`): while a
/// node holds it nobody else can commit, so its next turn needs neither the lock nor a
/// catch-up, and a node alone on its database pays for neither. A second loop beats the node's
/// heartbeat and ends dead nodes' epochs.
final class ClusterNode: @unchecked Sendable {
    let store: PostgresLog
    /// A connection of its own for heartbeats and requests for the turn, which must not wait
    /// behind a turn lock request on the writer's connection.
    let side: PostgresLog
    let ledger: Ledger
    let log: EventLog
    let hub: Hub
    let settings: ClusterSettings
    let address: String
    /// Names this node across restarts: its data directory's id.
    let nodeId: String
    let logger: Logger
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    private let state = NIOLockedValueBox(State())
    private var tasks: [Task<Void, Never>] = []
    private let turns = Counter(label: "chat_cluster_turns_total")
    private let lockTakes = Counter(label: "chat_cluster_lock_acquisitions_total")
    private let fetched = Counter(label: "chat_cluster_events_fetched_total")
    /// Told once when this node cannot go on: its log writer stopped (fenced out), or events
    /// other nodes stored cannot be applied (set before `start`).
    var onFailure: (@Sendable (String) -> Void)?

    private struct State {
        var stopped = false
        /// Callers of `catchUp()` waiting for the next pass.
        var catchUpWaiters: [CheckedContinuation<Void, Never>] = []
        var reaping: Set<UInt64> = []
        /// Since when this node's heartbeats have been getting through (nil after a failure).
        var beatingSince: UInt64?
        /// Another node asked for the turn since this node last gave it back.
        var wantedByOthers = false
        /// The turn lock's connection while this node holds the lock.
        var lockConnection: Int?
    }

    init(store: PostgresLog, side: PostgresLog, ledger: Ledger, log: EventLog, hub: Hub,
         settings: ClusterSettings, address: String, nodeId: String, logger: Logger) {
        self.nodeId = nodeId
        self.store = store
        self.side = side
        self.ledger = ledger
        self.log = log
        self.hub = hub
        self.settings = settings
        self.address = address
        self.logger = logger
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Makes the Ledger wait for turns and starts following the log.
    func start() async {
        let wake = self.wake, log = self.log, state = self.state, nodeId = self.nodeId
        await ledger.shareLog(wanted: { wake.yield() }, catchUp: { [weak self] in await self?.catchUp() })
        tasks.append(Task { await self.run() })
        tasks.append(PostgresLog.listen(url: store.url, channel: PostgresLog.logChannel, logger: logger) { payload in
            // This node's own commits are announced too: nothing to fetch for those.
            if let payload, let seq = UInt64(payload), seq <= log.durableSeq { return }
            wake.yield()
        })
        tasks.append(PostgresLog.listen(url: store.url, channel: PostgresLog.turnChannel, logger: logger) { payload in
            if payload == nodeId { return }
            // nil: the listener was away and may have missed a request; give the lock back to be sure.
            state.withLockedValue { $0.wantedByOthers = true }
            wake.yield()
        })
        tasks.append(Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(self.settings.poll * 1e9))
                wake.yield()
            }
        })
    }

    /// Joins the serving nodes under a new epoch (ending this node's earlier runs' epochs,
    /// which a crash may have left with sockets), lists it with a heartbeat, and returns it.
    func join() async throws -> UInt64 {
        let previous = try await side.epochs(ofNode: nodeId)
        let seq = try await ledger.startEpoch(ending: previous)
        try await log.waitUntilDurable(seq)
        let epoch = await ledger.ownEpoch
        try await side.registerNode(epoch: epoch, node: nodeId, address: address,
                                    connections: store.url.applicationName ?? "")
        for old in previous { try await side.removeNode(epoch: old) }
        return epoch
    }

    /// Starts the heartbeat (after the first `join`).
    func startHeartbeat() {
        tasks.append(Task { await self.beat() })
    }

    /// Stops following and beating; this node's row leaves the table of live nodes.
    func stop(epoch: UInt64?) async {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            s.stopped = true
            defer { s.catchUpWaiters = [] }
            return s.catchUpWaiters
        }
        for waiter in waiters { waiter.resume() }
        await ledger.endTurns(APIError.storeUnavailable)
        for task in tasks { task.cancel() }
        wake.yield()
        if let epoch { try? await side.removeNode(epoch: epoch) }
        await side.close()
    }

    /// Returns after a pass that fetched everything committed before the call.
    func catchUp() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let stopped = state.withLockedValue { s -> Bool in
                if !s.stopped { s.catchUpWaiters.append(waiter) }
                return s.stopped
            }
            if stopped { waiter.resume() } else { wake.yield() }
        }
    }

    // MARK: the loop

    private func run() async {
        for await _ in wakes {
            if state.withLockedValue({ $0.stopped }) { break }
            let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
                defer { s.catchUpWaiters = [] }
                return s.catchUpWaiters
            }
            do {
                if await ledger.hasTurnWaiters {
                    try await takeTurn()
                } else if !isHoldingLock {
                    try await follow()
                }
                await releaseLockIfWanted()
            } catch {
                if let reason = log.failureReason ?? Self.fatalReason(error) {
                    await ledger.failTurnWaiters(APIError.storeUnavailable)
                    onFailure?(reason)
                    break
                }
                logger.error("shared log: \(PostgresLog.describe(error))")
                store.noteFailure(error)
                await giveUpLock()
                await ledger.failTurnWaiters(APIError.storeUnavailable)
                try? await Task.sleep(nanoseconds: 200_000_000)
                wake.yield()
            }
            for waiter in waiters { waiter.resume() }
            // Commands that arrived during a turn wait for the next one.
            if await ledger.hasTurnWaiters { wake.yield() }
        }
    }

    /// Fetches and applies what other nodes committed since this node's head.
    private func follow() async throws {
        while true {
            let head = log.durableSeq
            let page = try await store.batches(after: head, limit: 500, maxBytes: 8 << 20)
            guard !page.isEmpty else { return }
            let records = try log.appendCommitted(page)
            // From here the batches are in the local log: they must reach the views too, or the
            // node would serve without them. Keys are waited for (the database may be away).
            await adoptKeysPatiently(registeredIn: records)
            let applied: (frames: [Fanout], endedOwnEpoch: Bool)
            do {
                applied = try await ledger.applyStored(records)
            } catch {
                throw ClusterNodeError.cannotApply(String(describing: error))
            }
            fetched.increment(by: records.count)
            hub.write(applied.frames.map { (nil, $0) })
            if applied.endedOwnEpoch { rejoin() }
            if page.count < 500 { return }
        }
    }

    /// Keys of users another node registered, from the database, before their events are
    /// applied; retried until the database answers (meanwhile the store reads as unavailable).
    private func adoptKeysPatiently(registeredIn records: [Record]) async {
        let users = records.compactMap { record -> UInt32? in
            guard record.type == EventType.userRegistered.rawValue, case let .userRegistered(e)? = try? Event.decode(record) else { return nil }
            return e.userId
        }
        guard !users.isEmpty else { return }
        while !state.withLockedValue({ $0.stopped }) {
            do {
                let found = try await store.wrappedKeys(of: users)
                try ledger.keys.adopt(found.map { WrappedKeyEntry(user: $0.0, wrapped: $0.1) })
                return
            } catch {
                store.noteFailure(error)
                logger.warning("reading new users' keys: \(PostgresLog.describe(error)); retrying")
                try? await Task.sleep(nanoseconds: 200_000_000)
            }
        }
    }

    /// Why `error` means the node cannot go on, if it does.
    private static func fatalReason(_ error: any Error) -> String? {
        if case let .cannotApply(why)? = error as? ClusterNodeError { return "cannot apply events another node stored: \(why)" }
        return nil
    }

    /// True while this node holds the turn lock on a connection that is still open.
    private var isHoldingLock: Bool {
        let held = state.withLockedValue { $0.lockConnection }
        return held != nil && held == store.currentConnectionId
    }

    /// Takes the turn lock, then fetches what was committed before it. While it waits it asks
    /// the holder for the lock every 10 ms: a holder that gave it back for an earlier request
    /// may have taken it again before this node's request reached the queue, its request used up.
    private func acquireLock() async throws {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(settings.turnTimeout * 1e9)
        let (side, nodeId) = (self.side, self.nodeId)
        let asking = Task {
            while !Task.isCancelled {
                try? await side.announceTurnWanted(by: nodeId)
                try? await Task.sleep(nanoseconds: 10_000_000)
            }
        }
        defer { asking.cancel() }
        while true {
            if let connection = try await store.lockTurn(timeout: 1) {
                state.withLockedValue { $0.lockConnection = connection }
                lockTakes.increment()
                break
            }
            if DispatchTime.now().uptimeNanoseconds > deadline { throw ClusterNodeError.turnBusy(settings.turnTimeout) }
        }
        try await follow()
    }

    /// Gives the lock back when another node asked for it.
    private func releaseLockIfWanted() async {
        let release = state.withLockedValue { s -> Bool in
            guard s.wantedByOthers, s.lockConnection != nil else { return false }
            s.wantedByOthers = false
            s.lockConnection = nil
            return true
        }
        if release { await store.unlockTurn() }
    }

    private func giveUpLock() async {
        state.withLockedValue { $0.lockConnection = nil }
        await store.unlockTurn()
    }

    private func takeTurn() async throws {
        if !isHoldingLock {
            state.withLockedValue { $0.lockConnection = nil }
            try await acquireLock()
        }
        do {
            let opened = DispatchTime.now().uptimeNanoseconds
            await ledger.openTurn()
            while true {
                await ledger.untilAdmittedRan()
                let reserved = log.nextAssignedSeq - 1
                if reserved > log.durableSeq { try await log.waitUntilDurable(reserved) }
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - opened) / 1e9
                // Keep the turn while commands keep coming, up to `maxTurn`.
                if log.nextAssignedSeq - 1 == reserved || elapsed >= settings.maxTurn { break }
            }
            await ledger.closeTurn()
            let reserved = log.nextAssignedSeq - 1
            if reserved > log.durableSeq { try await log.waitUntilDurable(reserved) }
            turns.increment()
        } catch {
            await ledger.closeTurn()
            await giveUpLock()
            throw error
        }
    }

    /// This node was taken for dead (its heartbeat stopped for `nodeTimeout`, or the database
    /// was out of reach) and its sockets count as closed: close them, so their clients come
    /// back, and serve on under a new epoch.
    private func rejoin() {
        logger.error("this node was taken for dead by the other nodes (no heartbeat for \(settings.nodeTimeout) s): closing its sockets and joining again")
        hub.closeAll()
        Task {
            do {
                _ = try await join()
            } catch {
                logger.error("joining again failed: \(error)")
            }
        }
    }

    // MARK: heartbeat

    /// Beats every `heartbeat` seconds and ends the epochs of nodes without one for `nodeTimeout`.
    private func beat() async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(settings.heartbeat * 1e9))
            if Task.isCancelled { break }
            do {
                let own = await ledger.ownEpoch
                try await side.heartbeat(epoch: own)
                // After an outage every heartbeat is old: judge others only once they have had
                // `nodeTimeout` to beat again, as this node has.
                let now = DispatchTime.now().uptimeNanoseconds
                let since = state.withLockedValue { s -> UInt64 in
                    if s.beatingSince == nil { s.beatingSince = now }
                    return s.beatingSince!
                }
                guard Double(now - since) / 1e9 >= settings.nodeTimeout else { continue }
                for dead in try await side.staleNodes(olderThan: settings.nodeTimeout) where dead != own {
                    let first = state.withLockedValue { $0.reaping.insert(dead).inserted }
                    if first { Task { await self.endEpoch(dead) } }
                }
            } catch {
                state.withLockedValue { $0.beatingSince = nil }
                store.noteFailure(error)
                logger.warning("heartbeat: \(PostgresLog.describe(error))")
            }
        }
    }

    private func endEpoch(_ epoch: UInt64) async {
        defer { _ = state.withLockedValue { $0.reaping.remove(epoch) } }
        do {
            // A hung node, or one cut off from the database, may hold the turn lock.
            let ended = try await side.endConnections(ofStaleNode: epoch, olderThan: settings.nodeTimeout)
            if ended > 0 { logger.warning("ended \(ended) database sessions of node \(epoch), which has no heartbeat") }
            if let left = try await ledger.nodeLeft(epoch) {
                try await log.waitUntilDurable(left.seq)
                hub.write(left.frames.map { (nil, $0) })
                logger.warning("node of epoch \(epoch) has no heartbeat for \(settings.nodeTimeout) s: its sockets count as closed")
            }
            try await side.removeNode(epoch: epoch)
        } catch {
            logger.warning("ending the epoch of node \(epoch): \(error)")
        }
    }
}

/// Why a node of a shared log could not go on.
enum ClusterNodeError: Error, CustomStringConvertible {
    /// Events other nodes stored could not be applied (a newer schema?): the node starts over,
    /// and a start that cannot replay them says why.
    case cannotApply(String)
    /// The turn lock was not free for this many seconds.
    case turnBusy(Double)

    var description: String {
        switch self {
        case let .cannotApply(why): return "cannot apply events another node stored: \(why)"
        case let .turnBusy(seconds): return "the write turn was not free for \(seconds) s"
        }
    }
}
