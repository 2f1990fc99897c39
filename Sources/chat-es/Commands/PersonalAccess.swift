import Foundation
import Projections

/// What an audit tool may learn of a data directory's sealed fields: without the master key,
/// only which users are erased; with it (asked for by `--include-secrets` or a `--user NAME`),
/// the name index and, for `--include-secrets`, the opened fields. A log from before
/// encryption has no key store and needs none.
struct PersonalAccess {
    let reader: SealedFieldReader
    private let store: KeyStore?

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
