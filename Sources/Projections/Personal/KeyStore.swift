import Foundation

/// The users' data keys, each wrapped by the master key, in `<data>/keys`: outside the log, so
/// destroying a key erases that user's personal fields from every copy of the log at once.
///
/// Files: `index.key` (the name index key, wrapped) and `users-<6 digits>.keys`, one per 4,096
/// user ids: an 8-byte magic, then 64-byte entries (`u32` user id, the wrapped key). A
/// registration appends its entry and syncs it before its event is reserved in the log, so
/// every durable registration has a durable key. Erasure rewrites the shard without the entry
/// (temp file, fsync, rename over, fsync of the directory), so no copy of the key stays in the
/// data directory. Keys are unwrapped on first use and kept in memory.
public final class KeyStore: @unchecked Sendable {
    public static let directoryName = "keys"

    /// Where the keys are kept, for messages: a directory or a database.
    public let directory: String
    public let nameIndex: NameIndexKey
    private let master: MasterKey
    private let persistence: any KeyPersistence
    private let writable: Bool

    private let lock = NSLock()
    /// Slot `id - 1`: 0 no key, 1 wrapped, 2 unwrapped too.
    private var state: [UInt8] = []
    /// 60 bytes per slot.
    private var wrapped: [UInt8] = []
    /// 32 bytes per slot, valid where `state` is 2.
    private var plain: [UInt8] = []
    /// Keys ready to use, for the users who sent lately: building a key allocates, and a busy
    /// sender needs theirs for every message. Emptied when it reaches `keyCacheLimit`.
    private var ready: [UInt32: DataKey] = [:]
    private static let keyCacheLimit = 1 << 16

    private init(persistence: any KeyPersistence, master: MasterKey, nameIndex: NameIndexKey, writable: Bool) {
        self.directory = persistence.location
        self.persistence = persistence
        self.master = master
        self.nameIndex = nameIndex
        self.writable = writable
    }

    /// The key store of `dataDirectory`, created on first use. A torn last entry (a crash while
    /// a registration wrote it, before its event reached the log) is cut off.
    public static func open(dataDirectory: String, master: MasterKey) throws -> KeyStore {
        try open(persistence: FileKeyPersistence.open(dataDirectory: dataDirectory), master: master)
    }

    /// The key store kept by `persistence` (files, or a database shared by several nodes).
    public static func open(persistence: any KeyPersistence, master: MasterKey) throws -> KeyStore {
        let stored = try persistence.indexKey(orStore: {
            try DataKey.random().withBytes { try master.wrap($0, context: indexContext) }
        })
        let store = KeyStore(persistence: persistence, master: master,
                             nameIndex: try readIndexKey(stored, persistence.location, master), writable: true)
        try store.load(persistence.loadAll(repair: true))
        return store
    }

    /// The key store of `dataDirectory` for the audit tools: nothing is created or repaired.
    public static func openReadOnly(dataDirectory: String, master: MasterKey) throws -> KeyStore {
        let persistence = FileKeyPersistence(directory: dataDirectory + "/" + directoryName)
        guard let stored = persistence.existingIndexKey() else {
            throw KeyStoreError("no key store at \(persistence.location)")
        }
        return try openReadOnly(persistence: persistence, indexKey: stored, master: master)
    }

    /// The key store kept by `persistence`, whose wrapped index key is `stored`, for the audit
    /// tools: nothing is created or repaired.
    public static func openReadOnly(persistence: any KeyPersistence, indexKey stored: [UInt8], master: MasterKey) throws -> KeyStore {
        let store = KeyStore(persistence: persistence, master: master,
                             nameIndex: try readIndexKey(stored, persistence.location, master), writable: false)
        try store.load(persistence.loadAll(repair: false))
        return store
    }

    /// True when `dataDirectory` has a key store (it holds a log in the encrypted format).
    public static func exists(dataDirectory: String) -> Bool {
        FileKeyPersistence(directory: dataDirectory + "/" + directoryName).existingIndexKey() != nil
    }

    /// The users that have a key, read without the master key (so `replay` can tell an erased
    /// user from one whose fields it may not decrypt).
    public static func userIds(dataDirectory: String) -> Set<UInt32> {
        let entries = (try? FileKeyPersistence(directory: dataDirectory + "/" + directoryName).loadAll(repair: false)) ?? []
        return Set(entries.map(\.user))
    }

    // MARK: keys

    /// A new key for `user`, durable in the key store when this returns. Replaces a key left by
    /// a registration that never reached the log.
    public func createKey(for user: UInt32) throws -> DataKey {
        try createKeys(for: [user])[0]
    }

    /// New keys for `users`, durable when this returns: one write and one sync per shard, for
    /// bulk work such as `chat-es migrate`.
    public func createKeys(for users: [UInt32]) throws -> [DataKey] {
        precondition(writable, "read-only key store")
        var keys: [DataKey] = []
        var wrappedKeys: [[UInt8]] = []
        for user in users {
            precondition(user >= 1, "user ids start at 1")
            let key = DataKey.random()
            keys.append(key)
            wrappedKeys.append(try key.withBytes { try master.wrap($0, context: Self.context(user)) })
        }
        try lock.withLock {
            try persistence.add(zip(users, wrappedKeys).map { WrappedKeyEntry(user: $0, wrapped: $1) })
            for (i, user) in users.enumerated() {
                store(user, wrapped: wrappedKeys[i])
                keys[i].withBytes { setPlain(user, $0) }
            }
        }
        return keys
    }

    /// Takes keys another node of a shared log created (already stored) into memory.
    public func adopt(_ entries: [WrappedKeyEntry]) throws {
        try lock.withLock {
            for entry in entries { ready[entry.user] = nil }
            try load(entries)
        }
    }

    /// `user`'s key, or nil if they have none (erased, or never registered).
    public func key(for user: UInt32) -> DataKey? {
        lock.withLock {
            let slot = Int(user) - 1
            guard user >= 1, slot < state.count, state[slot] != 0 else { return nil }
            if let key = ready[user] { return key }
            if ready.count >= Self.keyCacheLimit { ready.removeAll(keepingCapacity: true) }
            if state[slot] == 2 {
                let key = DataKey(bytes: plain[(slot * 32)..<(slot * 32 + 32)])
                ready[user] = key
                return key
            }
            let raw = wrapped[(slot * 60)..<(slot * 60 + 60)]
            guard let key = try? raw.withUnsafeBytes({ try master.unwrap($0, context: Self.context(user)) }) else {
                return nil
            }
            key.withUnsafeBytes { setPlain(user, $0) }
            let ready = DataKey(bytes: key)
            self.ready[user] = ready
            return ready
        }
    }

    public func hasKey(_ user: UInt32) -> Bool {
        lock.withLock {
            let slot = Int(user) - 1
            return user >= 1 && slot < state.count && state[slot] != 0
        }
    }

    /// Users with a key, ascending.
    public var userIds: [UInt32] {
        lock.withLock { state.indices.filter { state[$0] != 0 }.map { UInt32($0 + 1) } }
    }

    /// Drops `user`'s key from memory at once (the erasure is decided); `destroy` makes it durable.
    public func forget(_ user: UInt32) {
        lock.withLock { clear(user) }
    }

    /// Removes the keys of `users` from the files: each affected shard is rewritten without them
    /// and synced before this returns.
    public func destroy(_ users: [UInt32]) throws {
        precondition(writable, "read-only key store")
        try lock.withLock {
            for user in users { clear(user) }
            try persistence.remove(users)
        }
    }

    // MARK: memory

    /// The authenticated context of a user's wrapped key.
    static func context(_ user: UInt32) -> [UInt8] {
        var c = Array("chat-es user key v1".utf8)
        withUnsafeBytes(of: user.littleEndian) { c.append(contentsOf: $0) }
        return c
    }

    static let indexContext = Array("chat-es name index key v1".utf8)

    private func load(_ entries: [WrappedKeyEntry]) throws {
        for entry in entries {
            guard entry.user >= 1, entry.wrapped.count == MasterKey.wrappedSize else {
                throw KeyStoreError("\(directory) holds a damaged entry for user \(entry.user)")
            }
            store(entry.user, wrapped: entry.wrapped[...])
        }
    }

    private func store(_ user: UInt32, wrapped key: ArraySlice<UInt8>) {
        let slot = Int(user) - 1
        grow(to: slot + 1)
        wrapped.replaceSubrange((slot * 60)..<(slot * 60 + 60), with: key)
        state[slot] = 1
    }

    private func store(_ user: UInt32, wrapped key: [UInt8]) { store(user, wrapped: key[...]) }

    private func setPlain(_ user: UInt32, _ key: UnsafeRawBufferPointer) {
        let slot = Int(user) - 1
        grow(to: slot + 1)
        plain.replaceSubrange((slot * 32)..<(slot * 32 + 32), with: key)
        state[slot] = 2
    }

    private func clear(_ user: UInt32) {
        ready[user] = nil
        let slot = Int(user) - 1
        guard user >= 1, slot < state.count else { return }
        state[slot] = 0
        for i in (slot * 32)..<(slot * 32 + 32) { plain[i] = 0 }
        for i in (slot * 60)..<(slot * 60 + 60) { wrapped[i] = 0 }
    }

    private func grow(to slots: Int) {
        guard slots > state.count else { return }
        let n = max(slots, state.count * 2)
        state.append(contentsOf: repeatElement(0, count: n - state.count))
        wrapped.append(contentsOf: repeatElement(0, count: n * 60 - wrapped.count))
        plain.append(contentsOf: repeatElement(0, count: n * 32 - plain.count))
    }

    private static func readIndexKey(_ wrappedKey: [UInt8], _ location: String, _ master: MasterKey) throws -> NameIndexKey {
        guard wrappedKey.count == MasterKey.wrappedSize else {
            throw KeyStoreError("the name index key in \(location) is damaged")
        }
        guard let key = try? wrappedKey.withUnsafeBytes({ try master.unwrap($0, context: indexContext) }) else {
            throw KeyStoreError("the master key (\(master.source)) does not open \(location): it is not the key this store was made with (was \(MasterKey.environmentVariable) changed or unset?)")
        }
        return NameIndexKey(bytes: key)
    }
}

/// A key store that cannot be opened or written; the message names the file.
public struct KeyStoreError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
