import Crypto
import Foundation
import Testing
@testable import Projections

/// Sealed fields, the key store, name keys and secrets: what crypto-shredding rests on.
@Suite struct PersonalDataTests {
    static let master = try! MasterKey(material: Array(repeating: 7, count: 32), source: "test")

    func tempDir() -> String {
        let path = NSTemporaryDirectory() + "chat-es-keys-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Every byte of every file under `dir`.
    func allBytes(under dir: String) -> [UInt8] {
        var out: [UInt8] = []
        let files = FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []
        for f in files { out += (FileManager.default.contents(atPath: dir + "/" + f).map(Array.init) ?? []) }
        return out
    }

    @Test(arguments: ["", "hi", "ünïcode ✓ 😀", String(repeating: "compressible text ", count: 40)])
    func boxesOpenOnlyWithTheirKeyFieldAndOwner(text: String) throws {
        let key = DataKey.random()
        let plain = Array(text.utf8)
        let box = try SealedBox.seal(plain, field: .messageText, owner: 5, key: key)
        #expect(try SealedBox.open(box, field: .messageText, owner: 5, key: key) == plain)
        #expect(!box.containsSubsequence(plain) || plain.count < 4, "the plaintext does not show in the box")
        if plain.count >= 96 { #expect(box.count < plain.count, "long texts are compressed before sealing") }
        #expect(throws: (any Error).self) { try SealedBox.open(box, field: .messageText, owner: 6, key: key) }
        #expect(throws: (any Error).self) { try SealedBox.open(box, field: .account, owner: 5, key: key) }
        #expect(throws: (any Error).self) { try SealedBox.open(box, field: .messageText, owner: 5, key: DataKey.random()) }
        var tampered = box
        tampered[tampered.count / 2] ^= 1
        #expect(throws: (any Error).self) { try SealedBox.open(tampered, field: .messageText, owner: 5, key: key) }
        #expect(throws: (any Error).self) { try SealedBox.open(Array(box.prefix(10)), field: .messageText, owner: 5, key: key) }
    }

    @Test func twoSealsOfOneTextDiffer() throws {
        let key = DataKey.random()
        let a = try SealedBox.seal(Array("same".utf8), field: .messageText, owner: 1, key: key)
        let b = try SealedBox.seal(Array("same".utf8), field: .messageText, owner: 1, key: key)
        #expect(a != b, "random nonces")
        #expect(a.count == SealedBox.overhead + 4)
    }

    @Test func keysSurviveAReopenAndADestroyedKeyLeavesNoCopy() throws {
        let data = tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let store = try KeyStore.open(dataDirectory: data, master: Self.master)
        let keys = try (1...5).map { try store.createKey(for: $0) }
        let boxes = try keys.enumerated().map { i, key in
            try SealedBox.seal(Array("user \(i + 1)".utf8), field: .account, owner: UInt32(i + 1), key: key)
        }
        let wrappedBefore = allBytes(under: data + "/keys")
        try store.destroy([3])
        #expect(store.key(for: 3) == nil && !store.hasKey(3))

        let reopened = try KeyStore.open(dataDirectory: data, master: Self.master)
        #expect(reopened.userIds == [1, 2, 4, 5])
        for id in [1, 2, 4, 5] as [UInt32] {
            let key = try #require(reopened.key(for: id))
            #expect(try SealedBox.open(boxes[Int(id) - 1], field: .account, owner: id, key: key) == Array("user \(id)".utf8))
        }
        #expect(reopened.key(for: 3) == nil)
        // The shard file was rewritten: user 3's wrapped key is nowhere in the directory.
        let entry3 = try #require(Self.entry(of: 3, in: wrappedBefore))
        #expect(!allBytes(under: data).containsSubsequence(entry3))
        #expect(reopened.nameIndex.nameKey(for: "Alice") == store.nameIndex.nameKey(for: "alice"))
    }

    /// The wrapped key bytes of `user` in a shard file's bytes (after the magic).
    static func entry(of user: UInt32, in bytes: [UInt8]) -> [UInt8]? {
        var found: [UInt8]?
        FileKeyPersistence.forEachEntry(bytes) { id, key in if id == user { found = Array(key) } }
        return found
    }

    @Test func aWrongMasterKeyIsRefusedWithAClearMessage() throws {
        let data = tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        _ = try KeyStore.open(dataDirectory: data, master: Self.master)
        let other = try MasterKey(material: Array(repeating: 8, count: 32), source: "CHAT_ES_MASTER_KEY")
        let error = #expect(throws: KeyStoreError.self) { try KeyStore.open(dataDirectory: data, master: other) }
        #expect(error?.description.contains("does not open") == true)
    }

    @Test func aTornEntryAndALeftoverTempFileAreCleanedUpAtOpen() throws {
        let data = tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let store = try KeyStore.open(dataDirectory: data, master: Self.master)
        _ = try store.createKeys(for: [1, 2])
        let shard = data + "/keys/" + FileKeyPersistence.shardName(0)
        let handle = try #require(FileHandle(forWritingAtPath: shard))
        handle.seekToEndOfFile()
        handle.write(Data([9, 9, 9]))  // a crash in the middle of the next append
        handle.closeFile()
        _ = FileManager.default.createFile(atPath: shard + ".tmp-1", contents: Data([1]))
        let reopened = try KeyStore.open(dataDirectory: data, master: Self.master)
        #expect(reopened.userIds == [1, 2])
        #expect(FileManager.default.contents(atPath: shard)?.count == 8 + 2 * 64)
        #expect(!FileManager.default.fileExists(atPath: shard + ".tmp-1"))
        _ = try reopened.createKey(for: 3)
        #expect(try KeyStore.open(dataDirectory: data, master: Self.master).userIds == [1, 2, 3])
    }

    @Test func keysOfManyShardsAndTheUserListWithoutTheMasterKey() throws {
        let data = tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let store = try KeyStore.open(dataDirectory: data, master: Self.master)
        _ = try store.createKeys(for: [1, 4096, 4097, 9000])
        #expect(KeyStore.userIds(dataDirectory: data) == [1, 4096, 4097, 9000])
        #expect(FileKeyPersistence(directory: data + "/keys").shardFiles().map(\.0) == [0, 1, 2])
        try store.destroy([4097])
        #expect(KeyStore.userIds(dataDirectory: data) == [1, 4096, 9000])
    }

    @Test func nameKeysAreCaseInsensitiveAndKeyed() throws {
        let a = NameIndexKey(bytes: Array(repeating: 1, count: 32))
        let b = NameIndexKey(bytes: Array(repeating: 2, count: 32))
        #expect(a.nameKey(for: "Ünïcode_Name") == a.nameKey(for: "ünïcode_name"))
        #expect(a.nameKey(for: "alice") != a.nameKey(for: "alicE2"))
        #expect(a.nameKey(for: "alice") != b.nameKey(for: "alice"), "without the index key, a name cannot be confirmed")
        // The pre-keyed HMAC is copied per name: every call equals a fresh HMAC, in any order.
        for name in ["alice", "bob", "alice", "x", String(repeating: "long", count: 40), "bob"] {
            let fresh = HMAC<SHA256>.authenticationCode(for: Array(name.utf8), using: a.symmetric)
            let expected = fresh.withUnsafeBytes { raw in
                NameKey(hi: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                        lo: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            #expect(a.nameKey(for: name) == expected)
        }
    }

    @Test func secretsShorterThan32BytesAreRefused() throws {
        #expect(throws: SecretMaterialError.self) { try SecretMaterial.bytes(of: "short-secret", source: "CHAT_ES_SECRET") }
        #expect(throws: SecretMaterialError.self) { try SecretMaterial.bytes(of: String(repeating: "ab", count: 31), source: "x") }
        #expect(try SecretMaterial.bytes(of: String(repeating: "ab", count: 32), source: "x") == Array(repeating: 0xAB, count: 32))
        #expect(try SecretMaterial.bytes(of: "a passphrase of thirty-two bytes!", source: "x").count == 33)
        #expect(SecretMaterial.randomHex().count == 64)
        #expect(throws: SecretMaterialError.self) { try MasterKey(material: Array(repeating: 1, count: 31), source: "x") }
    }

    @Test func theMasterKeyFileIsCreatedOncePrivately() throws {
        let data = tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        #expect(try MasterKey.load(dataDirectory: data, environment: [:], create: false) == nil)
        let first = try #require(try MasterKey.load(dataDirectory: data, environment: [:], create: true))
        let attributes = try FileManager.default.attributesOfItem(atPath: data + "/master-key")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let store = try KeyStore.open(dataDirectory: data, master: first)
        let again = try #require(try MasterKey.load(dataDirectory: data, environment: [:], create: true))
        _ = try KeyStore.open(dataDirectory: data, master: again)  // same key: opens
        let fromEnv = try #require(try MasterKey.load(
            dataDirectory: data, environment: ["CHAT_ES_MASTER_KEY": String(repeating: "cd", count: 32)], create: true))
        #expect(fromEnv.source == "CHAT_ES_MASTER_KEY")
        #expect(throws: KeyStoreError.self) { try KeyStore.open(dataDirectory: data, master: fromEnv) }
        _ = store
    }

    @Test func erasedUsersKeepTheirNameTakenAndLoseTheirSessions() throws {
        var set = ProjectionSet()
        let key = NameKey(hi: 1, lo: 2)
        set.apply(.userRegistered(UserRegistered(userId: 1, account: .sealed(nameKey: key, box: [1, 2, 3]))), seq: 1, timestamp: 10)
        set.apply(.userRegistered(UserRegistered(userId: 2, account: .sealed(nameKey: NameKey(hi: 3, lo: 4), box: [4]))), seq: 2, timestamp: 11)
        set.apply(.userLoggedIn(UserLoggedIn(userId: 1, sessionId: TokenID(hi: 0, lo: 1), refreshJti: TokenID(hi: 0, lo: 2), expiresAt: 1_000)), seq: 3, timestamp: 12)
        set.apply(.chatStarted(ChatStarted(conversation: 1, userA: 1, userB: 2)), seq: 4, timestamp: 13)
        #expect(set.isOnline(1, now: 20))
        set.apply(.userErased(UserErased(userId: 1)), seq: 5, timestamp: 14)
        #expect(set.users.userId(nameKey: key) == 1, "the name stays taken")
        #expect(set.users.isErased(1) && !set.users.isActive(1))
        #expect(set.users.user(1)?.sealedAccount == nil, "the box is dropped with its key")
        #expect(set.users.erasedIds == [1])
        #expect(!set.isOnline(1, now: 20))
        #expect(set.sessions.session(TokenID(hi: 0, lo: 1))?.state == .accountDeleted)
        #expect(set.suggestions(for: 2, limit: 5).allSatisfy { $0.userId != 1 }, "never suggested")
        // A snapshot keeps all of it.
        let loaded = try ProjectionSet.decodeSnapshot(set.snapshotBytes(chainHash: String(repeating: "00", count: 32))).get().0
        #expect(loaded == set)
        #expect(loaded.digest() == set.digest())
    }
}

extension Array where Element == UInt8 {
    /// True if `needle` occurs in this array (naive search; test data is small).
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        for start in 0...(count - needle.count) where self[start] == needle[0] {
            if self[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }
}
