import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// What several serving nodes on one database share besides the log: the write turn (an
/// advisory lock), the table of live nodes with their heartbeats, new batches' notifications,
/// and the keys of users another node registered.
extension PostgresLog {
    static let turnLockKey: Int64 = 7_270_003
    /// The channel a committed batch is announced on (by its insert), with its last seq.
    public static let logChannel = "chat_es_log"
    /// The channel a node that wants the write turn says so on, with its node id.
    public static let turnChannel = "chat_es_turn"

    /// Waits up to `timeout` seconds for the write turn: a session-level advisory lock on this
    /// log's connection, so a node that dies or loses its connection gives it up. Take it on
    /// the connection that inserts the batches: a node killed with an insert in flight gives
    /// the lock up only once its server process ends, after that insert committed or failed,
    /// so the next holder's catch-up sees it. Returns the connection it is held on (compare
    /// `currentConnectionId`), or nil when the wait timed out.
    public func lockTurn(timeout: Double) async throws -> Int? {
        try await query(PostgresQuery(unsafeSQL: "SET lock_timeout = '\(max(1, Int(timeout * 1000)))ms'"))
        defer { run("RESET lock_timeout").whenComplete { _ in } }
        do {
            try await query("SELECT pg_advisory_lock(\(Self.turnLockKey))", timeout: timeout + 5)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55P03" {
            return nil
        }
        return currentConnectionId
    }

    /// Gives the write turn back. A lost connection has given it back already.
    public func unlockTurn() async {
        _ = try? await query("SELECT pg_advisory_unlock(\(Self.turnLockKey))")
    }

    /// Tells the node holding the write turn that `node` wants it.
    public func announceTurnWanted(by node: String) async throws {
        try await query("SELECT pg_notify('chat_es_turn', \(node))")
    }

    /// Adds this node's epoch to the live nodes, with a heartbeat of now. `node` names the
    /// node across restarts (its data directory's id).
    /// `connections` is the `application_name` of this process's connections, so a node found
    /// dead can have them ended (`endConnections(ofStaleNode:)`).
    public func registerNode(epoch: UInt64, node: String, address: String, connections: String) async throws {
        try await query("""
            INSERT INTO chat_es_nodes (epoch, node, address, heartbeat, connections)
            VALUES (\(Int64(epoch)), \(node), \(address), now(), \(connections))
            ON CONFLICT (epoch) DO UPDATE SET heartbeat = now()
            """)
    }

    /// Ends the database sessions of the node of `epoch` if its heartbeat is older than
    /// `seconds`: a node that hangs, or whose network is cut, may hold the turn lock, which the
    /// database would otherwise keep until its TCP keepalive gives up (hours by default).
    /// Returns how many sessions were ended.
    @discardableResult
    public func endConnections(ofStaleNode epoch: UInt64, olderThan seconds: Double) async throws -> Int {
        let rows = try await query(PostgresQuery(unsafeSQL: """
            SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a JOIN chat_es_nodes n
              ON a.application_name = n.connections AND n.connections <> ''
            WHERE n.epoch = \(Int64(epoch)) AND n.heartbeat < now() - interval '\(Int(seconds * 1000)) milliseconds'
              AND a.datname = current_database() AND a.pid <> pg_backend_pid()
            """)).rows
        return rows.count
    }

    /// The epochs still listed for `node`: earlier runs of a node starting again, all dead.
    public func epochs(ofNode node: String) async throws -> [UInt64] {
        let rows = try await query("SELECT epoch FROM chat_es_nodes WHERE node = \(node) ORDER BY epoch").rows
        return try rows.map { UInt64(try $0.decode(Int64.self)) }
    }

    /// Renews this node's heartbeat (the database's clock: nodes' clocks never compare).
    public func heartbeat(epoch: UInt64) async throws {
        try await query("UPDATE chat_es_nodes SET heartbeat = now() WHERE epoch = \(Int64(epoch))")
    }

    /// Epochs of nodes whose heartbeat is older than `seconds`: dead, or cut off from the database.
    public func staleNodes(olderThan seconds: Double) async throws -> [UInt64] {
        let rows = try await query(PostgresQuery(unsafeSQL: """
            SELECT epoch FROM chat_es_nodes WHERE heartbeat < now() - interval '\(Int(seconds * 1000)) milliseconds'
            ORDER BY epoch
            """)).rows
        return try rows.map { UInt64(try $0.decode(Int64.self)) }
    }

    /// Live nodes: (epoch, address, seconds since the last heartbeat).
    public func liveNodes() async throws -> [(epoch: UInt64, address: String, age: Double)] {
        let rows = try await query("""
            SELECT epoch, address, extract(epoch FROM now() - heartbeat)::float8 FROM chat_es_nodes ORDER BY epoch
            """).rows
        return try rows.map { row in
            let (epoch, address, age) = try row.decode((Int64, String, Double).self)
            return (UInt64(epoch), address, age)
        }
    }

    public func removeNode(epoch: UInt64) async throws {
        try await query("DELETE FROM chat_es_nodes WHERE epoch = \(Int64(epoch))")
    }

    /// The wrapped keys of `users` (those that have one).
    public func wrappedKeys(of users: [UInt32]) async throws -> [(UInt32, [UInt8])] {
        guard !users.isEmpty else { return [] }
        let ids = users.map { String($0) }.joined(separator: ",")
        let rows = try await query(PostgresQuery(unsafeSQL: "SELECT user_id, wrapped FROM chat_es_user_keys WHERE user_id IN (\(ids))")).rows
        return try rows.map { row in
            let (id, wrapped) = try row.decode((Int64, ByteBuffer).self)
            return (UInt32(id), Array(wrapped.readableBytesView))
        }
    }

    /// Calls `notified` with the payload of each notification on `channel` until the task is
    /// cancelled, on a connection of its own, connecting again (after `retry` seconds) when it
    /// drops; and with nil once connected, since one may have been missed meanwhile.
    public static func listen(url: PostgresURL, channel: String, logger: Logger, retry: Double = 0.5,
                              notified: @escaping @Sendable (String?) -> Void) -> Task<Void, Never> {
        Task {
            var id = 1_000_000
            while !Task.isCancelled {
                id += 1
                do {
                    let connection = try await PostgresConnection.connect(
                        on: Self.loops.next(), configuration: url.configuration, id: id, logger: logger)
                    do {
                        try await withTaskCancellationHandler {
                            try await connection.listen(on: channel) { sequence in
                                notified(nil)
                                for try await notification in sequence { notified(notification.payload) }
                            }
                        } onCancel: {
                            connection.close().whenComplete { _ in }
                        }
                    } catch {}
                    try? await connection.close()
                } catch {}
                if Task.isCancelled { break }
                try? await Task.sleep(nanoseconds: UInt64(retry * 1e9))
            }
        }
    }
}
