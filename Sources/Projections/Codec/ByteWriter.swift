/// Append-only little-endian encoder shared by the event codec and snapshots.
///
/// Hand-rolled instead of Codable because replay decodes millions of records a
/// second and the format must stay byte-stable forever.
struct ByteWriter {
    private(set) var bytes: [UInt8]

    init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func u8(_ v: UInt8) { bytes.append(v) }

    mutating func fixed<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Unsigned LEB128.
    mutating func varint<T: UnsignedInteger & FixedWidthInteger>(_ v: T) {
        var v = UInt64(v)
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func int(_ v: Int) { varint(UInt64(max(v, 0))) }

    mutating func time(_ v: Int64) { fixed(v) }

    mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }

    mutating func token(_ t: TokenID) {
        fixed(t.hi)
        fixed(t.lo)
    }

    /// Varint byte length, then the UTF-8 bytes.
    mutating func string(_ s: String) {
        let utf8 = s.utf8
        varint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Varint byte length, then the bytes (sealed fields: not UTF-8).
    mutating func blob(_ b: [UInt8]) {
        varint(UInt64(b.count))
        bytes.append(contentsOf: b)
    }

    mutating func nameKey(_ k: NameKey) {
        fixed(k.hi)
        fixed(k.lo)
    }

    mutating func optionalString(_ s: String?) {
        if let s {
            bytes.append(1)
            string(s)
        } else {
            bytes.append(0)
        }
    }

    mutating func optionalTime(_ t: Int64?) {
        if let t {
            bytes.append(1)
            time(t)
        } else {
            bytes.append(0)
        }
    }

    mutating func raw(_ other: [UInt8]) { bytes.append(contentsOf: other) }
}
