import Foundation
import NIOCore
import PostgresNIO

/// The users' wrapped data keys in table `chat_es_user_keys`, and the wrapped name index key in
/// `chat_es_meta`, so every node on the database reads the keys any node made. The rows hold
/// keys wrapped by the master key, which never reaches the database. Calls block the calling
/// thread until the database answers (a registration's key is durable before its event), and
/// may be called on any thread, an event loop of the server's included.
extension PostgresLog {
    /// The stored wrapped name index key, storing `make()`'s first when there is none.
    public func indexKey(orStore make: () throws -> [UInt8]) throws -> [UInt8] {
        if let stored = try existingIndexKey() { return stored }
        // Two nodes starting at once may both get here: the first insert wins, both read it.
        _ = try blocking(("""
            INSERT INTO chat_es_meta (key, value) VALUES ('name_index_key', \(hexString(try make())))
            ON CONFLICT DO NOTHING
            """))
        guard let stored = try existingIndexKey() else {
            throw PostgresLogError.damaged("the name index key in \(url) is missing")
        }
        return stored
    }

    /// The stored wrapped name index key; nil when the database has no key store (a log from
    /// before encryption).
    public func existingIndexKey() throws -> [UInt8]? {
        let result = try blocking("SELECT value FROM chat_es_meta WHERE key = 'name_index_key'")
        guard let text = try result.rows.first?.decode(String.self) else { return nil }
        guard let bytes = Self.bytes(hex: text) else {
            throw PostgresLogError.damaged("the name index key in \(url) is damaged")
        }
        return bytes
    }

    /// Every (user id, wrapped key) stored.
    public func allWrappedKeys() throws -> [(UInt32, [UInt8])] {
        try blocking("SELECT user_id, wrapped FROM chat_es_user_keys ORDER BY user_id").rows.map { row in
            let (id, wrapped) = try row.decode((Int64, ByteBuffer).self)
            return (UInt32(id), Array(wrapped.readableBytesView))
        }
    }

    /// Stores the keys, replacing a key left by a registration that never reached the log.
    /// Up to `keysPerStatement` keys go in one statement: `copy` of a log with many users
    /// would otherwise wait for one round trip per key.
    public func storeWrappedKeys(_ entries: [(UInt32, [UInt8])]) throws {
        // One statement may not update a row twice: the last key given for a user wins.
        var latest: [UInt32: [UInt8]] = [:]
        for (user, wrapped) in entries { latest[user] = wrapped }
        let users = latest.keys.sorted()
        for start in stride(from: 0, to: users.count, by: Self.keysPerStatement) {
            let chunk = users[start..<min(start + Self.keysPerStatement, users.count)]
            var binds = PostgresBindings(capacity: 2 * chunk.count)
            var rows: [String] = []
            rows.reserveCapacity(chunk.count)
            for user in chunk {
                binds.append(Int64(user))
                binds.append(ByteBuffer(bytes: latest[user]!))
                rows.append("($\(binds.count - 1), $\(binds.count))")
            }
            _ = try blocking(PostgresQuery(unsafeSQL: """
                INSERT INTO chat_es_user_keys (user_id, wrapped) VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (user_id) DO UPDATE SET wrapped = EXCLUDED.wrapped
                """, binds: binds))
        }
    }

    /// Keys per insert: two parameters each, far below the protocol's 65,535 parameters.
    static let keysPerStatement = 1000

    /// Deletes the users' keys, then vacuums the table so the deleted rows' bytes are not left
    /// in its pages (the write-ahead log and backups keep them until they are recycled).
    public func deleteWrappedKeys(_ users: [UInt32]) throws {
        guard !users.isEmpty else { return }
        let ids = users.map { String($0) }.joined(separator: ",")
        _ = try blocking(PostgresQuery(unsafeSQL: "DELETE FROM chat_es_user_keys WHERE user_id IN (\(ids))"))
        _ = try blocking("VACUUM chat_es_user_keys")
    }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        return out
    }
}
