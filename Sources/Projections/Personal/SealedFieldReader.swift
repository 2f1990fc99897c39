/// What an audit may show of a sealed field.
public enum OpenedField: Sendable, Equatable {
    /// The plaintext (only with the owner's key, and only when secrets were asked for).
    case clear([UInt8])
    /// Sealed, and this reader may not or cannot open it.
    case hidden
    /// The owner's key is destroyed: the field is gone for good.
    case erased
}

/// How the audit tools read sealed fields: without keys, they only tell erased users (no key in
/// the key store) from the others; with the key store and the master key (`replay
/// --include-secrets`), they open what still has a key.
public struct SealedFieldReader: Sendable {
    let store: KeyStore?
    /// Users that have a key; nil when the data directory has no key store to ask.
    let keyed: Set<UInt32>?

    /// A reader that opens boxes with `store`'s keys.
    public init(store: KeyStore) {
        self.store = store
        keyed = Set(store.userIds)
    }

    /// A reader that opens nothing; `keyed` (the key store's users) tells erased users apart.
    public init(keyed: Set<UInt32>?) {
        store = nil
        self.keyed = keyed
    }

    public func read(_ box: [UInt8], field: PersonalField, owner: UInt32) -> OpenedField {
        if let keyed, !keyed.contains(owner) { return .erased }
        guard let store else { return .hidden }
        guard let key = store.key(for: owner) else { return .erased }
        guard let plain = try? SealedBox.open(box, field: field, owner: owner, key: key) else { return .hidden }
        return .clear(plain)
    }
}
