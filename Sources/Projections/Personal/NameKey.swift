import Crypto

/// A username as the log keeps it for uniqueness: the first 128 bits of an HMAC-SHA256 of the
/// case-folded name under the name index key. Equal for names equal case-insensitively, and
/// useless to anyone without that key, so it can outlive an erased account (the name stays
/// taken) without keeping the name.
public struct NameKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var hi: UInt64
    public var lo: UInt64

    public init(hi: UInt64, lo: UInt64) {
        self.hi = hi
        self.lo = lo
    }

    public static func < (a: NameKey, b: NameKey) -> Bool { (a.hi, a.lo) < (b.hi, b.lo) }

    public var description: String { TokenID(hi: hi, lo: lo).hex }
}

/// The secret behind `NameKey`s: one per data directory, kept wrapped in the key store.
public struct NameIndexKey: Sendable {
    let symmetric: SymmetricKey
    /// An HMAC already keyed: a copy of it hashes a name without keying again, which costs
    /// a third of a fresh `authenticationCode` (a send resolves its receiver's name with it).
    private let keyed: HMAC<SHA256>

    init(bytes: [UInt8]) {
        symmetric = SymmetricKey(data: bytes)
        keyed = HMAC<SHA256>(key: symmetric)
    }

    /// The key of `username`; uniqueness is case-insensitive, as the contract says.
    public func nameKey(for username: String) -> NameKey {
        var hmac = keyed
        hmac.update(data: Array(username.lowercased().utf8))
        let mac = hmac.finalize()
        return mac.withUnsafeBytes { raw in
            NameKey(hi: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    lo: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }
}
