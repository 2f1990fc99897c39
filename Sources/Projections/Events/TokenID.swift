/// A 128-bit random identifier: session ids and refresh-token ids (jti).
///
/// Kept as two words rather than a String so sessions cost 16 bytes per id and
/// hashing them never touches the heap.
public struct TokenID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var hi: UInt64
    public var lo: UInt64

    public init(hi: UInt64, lo: UInt64) {
        self.hi = hi
        self.lo = lo
    }

    /// A fresh id from the system's cryptographic generator.
    public static func random() -> TokenID {
        var rng = SystemRandomNumberGenerator()
        return TokenID(hi: rng.next(), lo: rng.next())
    }

    /// 32 lowercase hex digits, `hi` first.
    public var hex: String {
        var out = [UInt8]()
        out.reserveCapacity(32)
        appendHex(hi, to: &out)
        appendHex(lo, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses exactly 32 hex digits (either case); nil for anything else.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 32,
              let hi = parseHex64(utf8[0..<16]),
              let lo = parseHex64(utf8[16..<32])
        else { return nil }
        self.init(hi: hi, lo: lo)
    }

    public var description: String { hex }

    public static func < (a: TokenID, b: TokenID) -> Bool {
        (a.hi, a.lo) < (b.hi, b.lo)
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

/// Appends `value` as 16 lowercase hex digits.
func appendHex(_ value: UInt64, to out: inout [UInt8]) {
    var shift = 60
    while shift >= 0 {
        out.append(hexDigits[Int((value >> UInt64(shift)) & 0xF)])
        shift -= 4
    }
}

/// Parses exactly 16 hex digits.
func parseHex64(_ digits: ArraySlice<UInt8>) -> UInt64? {
    guard digits.count == 16 else { return nil }
    var value: UInt64 = 0
    for c in digits {
        let nibble: UInt8
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = c - UInt8(ascii: "A") + 10
        default: return nil
        }
        value = value << 4 | UInt64(nibble)
    }
    return value
}
