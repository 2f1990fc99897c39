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
    static let usersPerShard: UInt32 = 4096
    static let entrySize = 64
    static let shardMagic: [UInt8] = Array("CESKEYS1".utf8)
    static let indexMagic: [UInt8] = Array("CESIDX01".utf8)
    static let indexFileName = "index.key"

    public let directory: String
    public let nameIndex: NameIndexKey
    private let master: MasterKey
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

    private init(directory: String, master: MasterKey, nameIndex: NameIndexKey, writable: Bool) {
        self.directory = directory
        self.master = master
        self.nameIndex = nameIndex
        self.writable = writable
    }

    /// The key store of `dataDirectory`, created on first use. A torn last entry (a crash while
    /// a registration wrote it, before its event reached the log) is cut off.
    public static func open(dataDirectory: String, master: MasterKey) throws -> KeyStore {
        let dir = dataDirectory + "/" + directoryName
        try DurableFiles.makeDirectory(dataDirectory)
        try DurableFiles.makeDirectory(dir, mode: 0o700)
        for name in DurableFiles.listDirectory(dir) where name.contains(".tmp") {
            DurableFiles.remove(dir + "/" + name)  // an interrupted rewrite; the original is intact
        }
        let index = try loadOrCreateIndexKey(dir, master: master)
        let store = KeyStore(directory: dir, master: master, nameIndex: index, writable: true)
        try store.loadShards()
        return store
    }

    /// The key store of `dataDirectory` for the audit tools: nothing is created or repaired.
    public static func openReadOnly(dataDirectory: String, master: MasterKey) throws -> KeyStore {
        let dir = dataDirectory + "/" + directoryName
        guard let bytes = DurableFiles.readFile(dir + "/" + indexFileName) else {
            throw KeyStoreError("no key store at \(dir)")
        }
        let store = KeyStore(directory: dir, master: master, nameIndex: try readIndexKey(bytes, dir, master), writable: false)
        try store.loadShards()
        return store
    }

    /// True when `dataDirectory` has a key store (it holds a log in the encrypted format).
    public static func exists(dataDirectory: String) -> Bool {
        DurableFiles.readFile(dataDirectory + "/" + directoryName + "/" + indexFileName) != nil
    }

    /// The users that have a key, read without the master key (so `replay` can tell an erased
    /// user from one whose fields it may not decrypt).
    public static func userIds(dataDirectory: String) -> Set<UInt32> {
        let dir = dataDirectory + "/" + directoryName
        var ids = Set<UInt32>()
        for (_, name) in shardFiles(dir) {
            guard let bytes = DurableFiles.readFile(dir + "/" + name) else { continue }
            forEachEntry(bytes) { id, _ in ids.insert(id) }
        }
        return ids
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
        var entries: [UInt32: [UInt8]] = [:]
        var wrappedKeys: [[UInt8]] = []
        for user in users {
            precondition(user >= 1, "user ids start at 1")
            let key = DataKey.random()
            let wrappedKey = try key.withBytes { try master.wrap($0, context: Self.context(user)) }
            withUnsafeBytes(of: user.littleEndian) { entries[Self.shard(of: user), default: []].append(contentsOf: $0) }
            entries[Self.shard(of: user), default: []].append(contentsOf: wrappedKey)
            keys.append(key)
            wrappedKeys.append(wrappedKey)
        }
        try lock.withLock {
            for shard in entries.keys.sorted() { try appendEntry(entries[shard]!, shard: shard) }
            for (i, user) in users.enumerated() {
                store(user, wrapped: wrappedKeys[i])
                keys[i].withBytes { setPlain(user, $0) }
            }
        }
        return keys
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
            for shard in Set(users.map(Self.shard(of:))).sorted() { try rewrite(shard: shard) }
        }
    }

    // MARK: files

    static func shard(of user: UInt32) -> UInt32 { (user - 1) / usersPerShard }

    static func shardName(_ shard: UInt32) -> String {
        let digits = String(shard)
        return "users-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".keys"
    }

    /// (shard, file name) of every shard file, ascending.
    static func shardFiles(_ dir: String) -> [(UInt32, String)] {
        DurableFiles.listDirectory(dir).compactMap { name -> (UInt32, String)? in
            guard name.hasPrefix("users-"), name.hasSuffix(".keys"), name.utf8.count == 17,
                  let n = UInt32(name.dropFirst(6).prefix(6)) else { return nil }
            return (n, name)
        }.sorted { $0.0 < $1.0 }
    }

    /// The authenticated context of a user's wrapped key.
    static func context(_ user: UInt32) -> [UInt8] {
        var c = Array("chat-es user key v1".utf8)
        withUnsafeBytes(of: user.littleEndian) { c.append(contentsOf: $0) }
        return c
    }

    static let indexContext = Array("chat-es name index key v1".utf8)

    /// Calls `body` with each whole entry after the magic; returns the bytes those entries end at.
    @discardableResult
    static func forEachEntry(_ bytes: [UInt8], _ body: (UInt32, ArraySlice<UInt8>) -> Void) -> Int {
        guard bytes.count >= shardMagic.count, bytes[0..<shardMagic.count].elementsEqual(shardMagic) else { return 0 }
        var offset = shardMagic.count
        while bytes.count - offset >= entrySize {
            let id = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
            body(id, bytes[(offset + 4)..<(offset + entrySize)])
            offset += entrySize
        }
        return offset
    }

    private func loadShards() throws {
        for (shard, name) in Self.shardFiles(directory) {
            let path = directory + "/" + name
            guard let bytes = DurableFiles.readFile(path) else { throw KeyStoreError("cannot read \(path)") }
            guard bytes.count >= Self.shardMagic.count, bytes[0..<Self.shardMagic.count].elementsEqual(Self.shardMagic) else {
                throw KeyStoreError("\(path) is not a key store file")
            }
            var misplaced: UInt32?
            let end = Self.forEachEntry(bytes) { id, key in
                guard id >= 1, Self.shard(of: id) == shard else {
                    misplaced = id
                    return
                }
                store(id, wrapped: key)
            }
            if let misplaced { throw KeyStoreError("\(path) holds an entry for user \(misplaced), which belongs elsewhere") }
            if end < bytes.count && writable {
                // A torn append: the registration it belonged to never reached the log.
                try DurableFiles.truncate(path, to: end)
            }
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

    private func appendEntry(_ entry: [UInt8], shard: UInt32) throws {
        let path = directory + "/" + Self.shardName(shard)
        if try !DurableFiles.appendDurably(entry, to: path) {
            // A new shard: written whole with its magic, and its directory entry made durable.
            try DurableFiles.writeAtomically(Self.shardMagic, to: path, directory: directory, mode: 0o600)
            guard try DurableFiles.appendDurably(entry, to: path) else { throw KeyStoreError("\(path) vanished") }
        }
    }

    private func rewrite(shard: UInt32) throws {
        var bytes = Self.shardMagic
        let first = Int(shard * Self.usersPerShard)
        for slot in first..<min(first + Int(Self.usersPerShard), state.count) where state[slot] != 0 {
            withUnsafeBytes(of: UInt32(slot + 1).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: wrapped[(slot * 60)..<(slot * 60 + 60)])
        }
        let path = directory + "/" + Self.shardName(shard)
        try DurableFiles.writeAtomically(bytes, to: path, directory: directory, mode: 0o600)
    }

    private static func loadOrCreateIndexKey(_ dir: String, master: MasterKey) throws -> NameIndexKey {
        let path = dir + "/" + indexFileName
        if let bytes = DurableFiles.readFile(path) { return try readIndexKey(bytes, dir, master) }
        let fresh = DataKey.random()
        let wrappedKey = try fresh.withBytes { try master.wrap($0, context: indexContext) }
        try DurableFiles.writeAtomically(indexMagic + wrappedKey, to: path, directory: dir, mode: 0o600)
        return NameIndexKey(bytes: fresh.withBytes { Array($0) })
    }

    private static func readIndexKey(_ bytes: [UInt8], _ dir: String, _ master: MasterKey) throws -> NameIndexKey {
        guard bytes.count == indexMagic.count + MasterKey.wrappedSize, bytes[0..<indexMagic.count].elementsEqual(indexMagic) else {
            throw KeyStoreError("\(dir)/\(indexFileName) is damaged")
        }
        guard let key = try? bytes[indexMagic.count...].withUnsafeBytes({ try master.unwrap($0, context: indexContext) }) else {
            throw KeyStoreError("the master key (\(master.source)) does not open \(dir): it is not the key this store was made with (was \(MasterKey.environmentVariable) changed or unset?)")
        }
        return NameIndexKey(bytes: key)
    }
}

/// A key store that cannot be opened or written; the message names the file.
public struct KeyStoreError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
