import Foundation

/// The key store's files in `<data>/keys`: `index.key` (the name index key, wrapped) and
/// `users-<6 digits>.keys`, one per 4,096 user ids: an 8-byte magic, then 64-byte entries (`u32`
/// user id, the wrapped key). An addition is appended and synced; a removal rewrites the shard
/// without the entry (temp file, fsync, rename over, fsync of the directory).
public struct FileKeyPersistence: KeyPersistence {
    static let usersPerShard: UInt32 = 4096
    static let entrySize = 64
    static let shardMagic: [UInt8] = Array("CESKEYS1".utf8)
    static let indexMagic: [UInt8] = Array("CESIDX01".utf8)
    static let indexFileName = "index.key"

    public let directory: String
    public var location: String { directory }

    public init(directory: String) {
        self.directory = directory
    }

    /// The key directory of `dataDirectory`, created if needed, with the temp files of an
    /// interrupted rewrite removed (the original is intact).
    public static func open(dataDirectory: String) throws -> FileKeyPersistence {
        let dir = dataDirectory + "/" + KeyStore.directoryName
        try DurableFiles.makeDirectory(dataDirectory)
        try DurableFiles.makeDirectory(dir, mode: 0o700)
        for name in DurableFiles.listDirectory(dir) where name.contains(".tmp") {
            DurableFiles.remove(dir + "/" + name)
        }
        return FileKeyPersistence(directory: dir)
    }

    /// The wrapped index key if the file exists (nil: no key store here).
    public func existingIndexKey() -> [UInt8]? {
        guard let bytes = DurableFiles.readFile(directory + "/" + Self.indexFileName) else { return nil }
        guard bytes.count == Self.indexMagic.count + MasterKey.wrappedSize,
              bytes[0..<Self.indexMagic.count].elementsEqual(Self.indexMagic) else { return [] }
        return Array(bytes[Self.indexMagic.count...])
    }

    public func indexKey(orStore make: () throws -> [UInt8]) throws -> [UInt8] {
        if let existing = existingIndexKey() { return existing }
        let fresh = try make()
        try DurableFiles.writeAtomically(Self.indexMagic + fresh, to: directory + "/" + Self.indexFileName,
                                         directory: directory, mode: 0o600)
        return fresh
    }

    public func loadAll(repair: Bool) throws -> [WrappedKeyEntry] {
        var out: [WrappedKeyEntry] = []
        for (shard, name) in shardFiles() {
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
                out.append(WrappedKeyEntry(user: id, wrapped: Array(key)))
            }
            if let misplaced { throw KeyStoreError("\(path) holds an entry for user \(misplaced), which belongs elsewhere") }
            if end < bytes.count && repair {
                // A torn append: the registration it belonged to never reached the log.
                try DurableFiles.truncate(path, to: end)
            }
        }
        return out
    }

    public func add(_ entries: [WrappedKeyEntry]) throws {
        var byShard: [UInt32: [UInt8]] = [:]
        for entry in entries {
            withUnsafeBytes(of: entry.user.littleEndian) { byShard[Self.shard(of: entry.user), default: []].append(contentsOf: $0) }
            byShard[Self.shard(of: entry.user), default: []].append(contentsOf: entry.wrapped)
        }
        for shard in byShard.keys.sorted() {
            let path = directory + "/" + Self.shardName(shard)
            if try !DurableFiles.appendDurably(byShard[shard]!, to: path) {
                // A new shard: written whole with its magic, and its directory entry made durable.
                try DurableFiles.writeAtomically(Self.shardMagic, to: path, directory: directory, mode: 0o600)
                guard try DurableFiles.appendDurably(byShard[shard]!, to: path) else { throw KeyStoreError("\(path) vanished") }
            }
        }
    }

    public func remove(_ users: [UInt32]) throws {
        let gone = Set(users)
        for shard in Set(users.filter { $0 >= 1 }.map(Self.shard(of:))).sorted() {
            let path = directory + "/" + Self.shardName(shard)
            guard let old = DurableFiles.readFile(path) else { continue }
            var bytes = Self.shardMagic
            Self.forEachEntry(old) { id, key in
                guard !gone.contains(id) else { return }
                withUnsafeBytes(of: id.littleEndian) { bytes.append(contentsOf: $0) }
                bytes.append(contentsOf: key)
            }
            try DurableFiles.writeAtomically(bytes, to: path, directory: directory, mode: 0o600)
        }
    }

    static func shard(of user: UInt32) -> UInt32 { (user - 1) / usersPerShard }

    static func shardName(_ shard: UInt32) -> String {
        let digits = String(shard)
        return "users-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".keys"
    }

    /// (shard, file name) of every shard file, ascending.
    func shardFiles() -> [(UInt32, String)] {
        DurableFiles.listDirectory(directory).compactMap { name -> (UInt32, String)? in
            guard name.hasPrefix("users-"), name.hasSuffix(".keys"), name.utf8.count == 17,
                  let n = UInt32(name.dropFirst(6).prefix(6)) else { return nil }
            return (n, name)
        }.sorted { $0.0 < $1.0 }
    }

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
}
