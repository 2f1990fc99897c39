// Public conversation ids: `"c_"` + 16 hex digits of an invertible 64-bit mix of the
// conversation number, so ids are stable across replays yet do not reveal how many
// conversations exist. This is obfuscation, not secrecy.

private let conversationKey: UInt64 = 0x6a09_e667_f3bc_c908
private let mixMul1: UInt64 = 0xbf58_476d_1ce4_e5b9
private let mixMul2: UInt64 = 0x94d0_49bb_1331_11eb
private let mixInv1 = multiplicativeInverse(mixMul1)
private let mixInv2 = multiplicativeInverse(mixMul2)

/// The inverse of an odd number modulo 2^64 (Newton's iteration doubles the correct bits each step).
private func multiplicativeInverse(_ a: UInt64) -> UInt64 {
    var x = a
    for _ in 0..<6 { x = x &* (2 &- a &* x) }
    return x
}

private func unXorShift(_ y: UInt64, _ s: UInt64) -> UInt64 {
    var x = y
    var covered = s
    while covered < 64 {
        x = y ^ (x >> s)
        covered += s
    }
    return x
}

func mixConversationNumber(_ n: UInt64) -> UInt64 {
    var x = n ^ conversationKey
    x ^= x >> 30
    x = x &* mixMul1
    x ^= x >> 27
    x = x &* mixMul2
    x ^= x >> 31
    return x
}

func unmixConversationNumber(_ y: UInt64) -> UInt64 {
    var x = unXorShift(y, 31)
    x = x &* mixInv2
    x = unXorShift(x, 27)
    x = x &* mixInv1
    x = unXorShift(x, 30)
    return x ^ conversationKey
}

/// `"c_"` + 16 lowercase hex digits. Numbers start at 1.
public func publicConversationId(_ number: UInt32) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(18)
    appendPublicConversationId(number, to: &out)
    return String(decoding: out, as: UTF8.self)
}

/// `publicConversationId(number)` appended to `out` (no quotes).
public func appendPublicConversationId(_ number: UInt32, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "c"))
    out.append(UInt8(ascii: "_"))
    appendHex(mixConversationNumber(UInt64(number)), to: &out)
}

/// The conversation number behind a public id; nil for anything malformed, 0, or beyond 32 bits.
public func parseConversationId(_ s: String) -> UInt32? {
    let utf8 = Array(s.utf8)
    guard utf8.count == 18, utf8[0] == UInt8(ascii: "c"), utf8[1] == UInt8(ascii: "_") else { return nil }
    // Only lowercase: each number has exactly one spelling.
    guard !utf8[2...].contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "F") }),
          let mixed = parseHex64(utf8[2...])
    else { return nil }
    let n = unmixConversationNumber(mixed)
    guard n >= 1, let number = UInt32(exactly: n) else { return nil }
    return number
}
