import EventLog
import Projections

/// The key store's persistence in the database that holds the log, shared by every node. Its
/// failures are `EventLogError`s, which the routes answer with 503 like any storage failure.
public struct PostgresKeyPersistence: KeyPersistence {
    let log: PostgresLog

    public init(log: PostgresLog) { self.log = log }

    private func storing<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw EventLogError.io("key store in PostgreSQL: \(PostgresLog.describe(error))")
        }
    }

    public var location: String { "PostgreSQL \(log.url) (table chat_es_user_keys)" }

    public func indexKey(orStore make: () throws -> [UInt8]) throws -> [UInt8] { try storing { try log.indexKey(orStore: make) } }

    public func loadAll(repair: Bool) throws -> [WrappedKeyEntry] {
        try storing { try log.allWrappedKeys().map { WrappedKeyEntry(user: $0.0, wrapped: $0.1) } }
    }

    public func add(_ entries: [WrappedKeyEntry]) throws { try storing { try log.storeWrappedKeys(entries.map { ($0.user, $0.wrapped) }) } }

    public func remove(_ users: [UInt32]) throws { try storing { try log.deleteWrappedKeys(users) } }
}
