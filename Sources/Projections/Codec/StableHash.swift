/// FNV-1a, 64 bits: a hash that is the same in every process and on every replay,
/// unlike Swift's per-process seeded `Hasher`.
public struct FNV1a64: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes {
            h = (h ^ UInt64(b)) &* Self.prime
        }
        value = h
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Feeds the little-endian bytes of `v`.
    public mutating func update<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { update($0) }
    }

    public var hex: String {
        var out = [UInt8]()
        out.reserveCapacity(16)
        appendHex(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// The key of the idempotency index: FNV-1a of the sender id (4 bytes LE) then the client id's UTF-8.
///
/// Only the hash is kept in memory; a hit is confirmed by reading the message back from the log.
public func clientIdKey(sender: UInt32, clientId: String) -> UInt64 {
    var s = clientId
    return s.withUTF8 { clientIdKey(sender: sender, clientIdUTF8: UnsafeRawBufferPointer($0)) }
}

func clientIdKey(sender: UInt32, clientIdUTF8: UnsafeRawBufferPointer) -> UInt64 {
    var h = FNV1a64()
    h.update(sender)
    h.update(clientIdUTF8)
    return h.value
}
