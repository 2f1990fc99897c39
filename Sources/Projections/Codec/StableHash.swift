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

/// A fast 64-bit checksum of large buffers (snapshots): four independent lanes of
/// multiply-rotate over 8-byte words, so it runs at memory speed where byte-at-a-time FNV-1a
/// takes a tenth of a second per 100 MB. It detects damage; it is no defence against a forger
/// (the hash chain is, for the log).
public struct WordChecksum: Sendable {
    private var lanes: (UInt64, UInt64, UInt64, UInt64) = (0x9E37_79B9_7F4A_7C15, 0xC2B2_AE3D_27D4_EB4F,
                                                          0x1656_67B1_9E37_79F9, 0x85EB_CA77_C2B2_AE63)
    private var length: UInt64 = 0
    private static let prime: UInt64 = 0x9FB2_1C65_1E98_DF25

    public init() {}

    @inline(__always)
    private static func mix(_ lane: UInt64, _ word: UInt64) -> UInt64 {
        let x = (lane ^ word) &* prime
        return (x << 29) | (x >> 35)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        var (a, b, c, d) = lanes
        while i + 32 <= n {
            a = Self.mix(a, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            b = Self.mix(b, bytes.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            c = Self.mix(c, bytes.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
            d = Self.mix(d, bytes.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
            i += 32
        }
        while i < n {
            a = Self.mix(a, UInt64(bytes[i]))
            i += 1
        }
        lanes = (a, b, c, d)
        length &+= UInt64(n)
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public var value: UInt64 {
        var h = Self.mix(lanes.0, lanes.1)
        h = Self.mix(h, lanes.2)
        h = Self.mix(h, lanes.3)
        return Self.mix(h, length)
    }
}
