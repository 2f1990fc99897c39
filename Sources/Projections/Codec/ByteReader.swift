/// Bounds-checked little-endian decoder over borrowed bytes; the counterpart of `ByteWriter`.
///
/// It only lives inside a `withUnsafeBytes`-style scope, so it never copies the input.
struct ByteReader {
    let base: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ base: UnsafeRawBufferPointer) {
        self.base = base
    }

    var remaining: Int { base.count - offset }

    private func truncated(_ needed: Int) -> EventDecodingError {
        EventDecodingError("truncated payload: needed \(needed) bytes at offset \(offset) of \(base.count)")
    }

    mutating func u8() throws -> UInt8 {
        guard remaining >= 1 else { throw truncated(1) }
        let v = base[offset]
        offset += 1
        return v
    }

    mutating func fixed<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw truncated(size) }
        let v = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: v)
    }

    mutating func time() throws -> Int64 { try fixed(Int64.self) }

    mutating func token() throws -> TokenID {
        let hi = try fixed(UInt64.self)
        let lo = try fixed(UInt64.self)
        return TokenID(hi: hi, lo: lo)
    }

    /// Unsigned LEB128; rejects encodings longer than 10 bytes or beyond 64 bits.
    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < base.count else { throw truncated(1) }
            let byte = base[offset]
            offset += 1
            if shift == 63 && byte > 1 {
                throw EventDecodingError("varint overflows 64 bits at offset \(offset - 1)")
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 {
                throw EventDecodingError("varint longer than 10 bytes at offset \(offset - 1)")
            }
        }
    }

    mutating func varint32() throws -> UInt32 {
        let start = offset
        let v = try varint()
        guard let small = UInt32(exactly: v) else {
            throw EventDecodingError("value \(v) at offset \(start) does not fit in 32 bits")
        }
        return small
    }

    mutating func int() throws -> Int {
        let start = offset
        let v = try varint()
        guard let small = Int(exactly: v) else {
            throw EventDecodingError("count \(v) at offset \(start) is too large")
        }
        return small
    }

    /// A count of items that each take at least `minItemSize` bytes, so a corrupt
    /// count cannot make the caller reserve absurd amounts of memory.
    mutating func count(minItemSize: Int) throws -> Int {
        let n = try int()
        guard n <= remaining / max(minItemSize, 1) else {
            throw EventDecodingError("count \(n) exceeds the \(remaining) bytes left")
        }
        return n
    }

    mutating func bool() throws -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let other: throw EventDecodingError("invalid flag byte \(other) at offset \(offset - 1)")
        }
    }

    mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else { throw truncated(count) }
        let slice = UnsafeRawBufferPointer(rebasing: base[offset..<(offset + count)])
        offset += count
        return slice
    }

    /// The bytes of a length-prefixed string, checked to be valid UTF-8, without allocating.
    mutating func utf8Bytes() throws -> UnsafeRawBufferPointer {
        let start = offset
        let length = try varint()
        guard let n = Int(exactly: length), n <= remaining else { throw truncated(Int(clamping: length)) }
        let slice = try bytes(n)
        guard isValidUTF8(slice) else {
            throw EventDecodingError("invalid UTF-8 in string at offset \(start)")
        }
        return slice
    }

    /// The bytes of a length-prefixed blob (`ByteWriter.blob`), without copying.
    mutating func blob() throws -> UnsafeRawBufferPointer {
        let length = try varint()
        guard let n = Int(exactly: length), n <= remaining else { throw truncated(Int(clamping: length)) }
        return try bytes(n)
    }

    mutating func nameKey() throws -> NameKey {
        NameKey(hi: try fixed(UInt64.self), lo: try fixed(UInt64.self))
    }

    mutating func string() throws -> String {
        String(decoding: try utf8Bytes(), as: UTF8.self)
    }

    mutating func optionalString() throws -> String? {
        try bool() ? try string() : nil
    }

    mutating func optionalTime() throws -> Int64? {
        try bool() ? try time() : nil
    }

    /// Every byte must have been consumed: trailing bytes mean a wrong type or version.
    func finish() throws {
        guard remaining == 0 else {
            throw EventDecodingError("\(remaining) unexpected trailing bytes")
        }
    }
}
