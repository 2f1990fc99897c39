import API
import EventLog
import Foundation
import Projections

/// What an audit tool may learn of a data directory's sealed fields: without the master key,
/// only which users are erased; with it (asked for by `--include-secrets` or a `--user NAME`),
/// the name index and, for `--include-secrets`, the opened fields. A log from before
/// encryption has no key store and needs none.
struct PersonalAccess {
    let reader: SealedFieldReader
    private let store: KeyStore?

    /// The keys of `data`: its key directory, or with `--postgres` the database's key table.
    init(data: DataDirectoryOptions, openFields: Bool, resolveNames: Bool) throws {
        if let address = data.postgres {
            self = try Self.inDatabase(address, dataDirectory: data.path, openFields: openFields, resolveNames: resolveNames)
        } else {
            try self.init(dataDirectory: data.path, openFields: openFields, resolveNames: resolveNames)
        }
    }

    private init(reader: SealedFieldReader, store: KeyStore?) {
        self.reader = reader
        self.store = store
    }

    /// The keys kept in the database at `address` (the master key as the nodes find it).
    private static func inDatabase(_ address: String, dataDirectory: String, openFields: Bool, resolveNames: Bool) throws -> PersonalAccess {
        let url: PostgresURL
        do { url = try PostgresURL(address) } catch { throw ToolError.usage("--postgres: \(error)") }
        let database = try runBlocking { try await PostgresLog.open(url: url) }
        defer { _ = try? runBlocking { await database.close() } }
        let keyed: [UInt32]
        let indexKey: [UInt8]?
        do {
            keyed = try database.allWrappedKeys().map(\.0)
            indexKey = try database.existingIndexKey()
        } catch {
            throw ToolError.io("\(PostgresLog.describe(error))")
        }
        guard let indexKey else { return PersonalAccess(reader: SealedFieldReader(keyed: nil), store: nil) }
        guard openFields || resolveNames else { return PersonalAccess(reader: SealedFieldReader(keyed: Set(keyed)), store: nil) }
        let environment = ProcessInfo.processInfo.environment
        var master: MasterKey?
        do {
            master = try MasterKey.load(dataDirectory: dataDirectory, environment: environment, create: false)
            if master == nil, let secret = environment["CHAT_ES_SECRET"], !secret.isEmpty {
                // As `serve --postgres` derives it when CHAT_ES_MASTER_KEY is unset.
                master = try MasterKey.derived(fromSharedSecret: SecretMaterial.bytes(of: secret, source: "CHAT_ES_SECRET"))
            }
        } catch {
            throw ToolError.usage("\(error)")
        }
        guard let master else {
            throw ToolError.usage("opening sealed fields of the database's log needs the nodes' master key: set \(MasterKey.environmentVariable), or CHAT_ES_SECRET if the nodes derive it from that")
        }
        do {
            let opened = try KeyStore.openReadOnly(persistence: PostgresKeyPersistence(log: database), indexKey: indexKey, master: master)
            return PersonalAccess(reader: openFields ? SealedFieldReader(store: opened) : SealedFieldReader(keyed: Set(opened.userIds)),
                                  store: opened)
        } catch {
            throw ToolError.io("\(error)")
        }
    }

    init(dataDirectory: String, openFields: Bool, resolveNames: Bool) throws {
        guard KeyStore.exists(dataDirectory: dataDirectory) else {
            reader = SealedFieldReader(keyed: nil)
            store = nil
            return
        }
        guard openFields || resolveNames else {
            reader = SealedFieldReader(keyed: KeyStore.userIds(dataDirectory: dataDirectory))
            store = nil
            return
        }
        let master: MasterKey?
        do {
            master = try MasterKey.load(dataDirectory: dataDirectory, environment: ProcessInfo.processInfo.environment, create: false)
        } catch {
            throw ToolError.usage("\(error)")
        }
        guard let master else {
            let why = openFields ? "--include-secrets opens sealed fields" : "--user NAME looks names up by their keyed hash"
            throw ToolError.usage("\(why), which needs the master key: set \(MasterKey.environmentVariable) or keep \(dataDirectory)/\(MasterKey.fileName)")
        }
        do {
            let opened = try KeyStore.openReadOnly(dataDirectory: dataDirectory, master: master)
            store = opened
            reader = openFields ? SealedFieldReader(store: opened) : SealedFieldReader(keyed: Set(opened.userIds))
        } catch {
            throw ToolError.io("\(error)")
        }
    }

    /// The key of a username in this directory's name index; nil without a key store.
    func nameKey(for username: String) -> NameKey? { store?.nameIndex.nameKey(for: username) }
}
