/// Strict UTF-8 validation (Unicode Table 3-7: no overlongs, surrogates or code points past U+10FFFF).
///
/// Written out rather than using `String(validating:)` so the replay fast path can
/// check message text without allocating a String for it.
func isValidUTF8(_ buffer: UnsafeRawBufferPointer) -> Bool {
    let n = buffer.count
    guard n > 0, let base = buffer.baseAddress else { return true }
    var i = 0
    while i < n {
        // Most text is ASCII: test eight bytes at a time.
        while i + 8 <= n {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            if word & 0x8080_8080_8080_8080 != 0 { break }
            i += 8
        }
        if i >= n { break }
        let b0 = base.load(fromByteOffset: i, as: UInt8.self)
        if b0 < 0x80 {
            i += 1
            continue
        }
        @inline(__always) func byte(_ k: Int) -> UInt8 {
            base.load(fromByteOffset: k, as: UInt8.self)
        }
        @inline(__always) func isContinuation(_ b: UInt8) -> Bool { b & 0xC0 == 0x80 }
        switch b0 {
        case 0xC2...0xDF:
            guard i + 1 < n, isContinuation(byte(i + 1)) else { return false }
            i += 2
        case 0xE0...0xEF:
            guard i + 2 < n else { return false }
            let b1 = byte(i + 1)
            let lower: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80
            let upper: UInt8 = b0 == 0xED ? 0x9F : 0xBF
            guard b1 >= lower, b1 <= upper, isContinuation(byte(i + 2)) else { return false }
            i += 3
        case 0xF0...0xF4:
            guard i + 3 < n else { return false }
            let b1 = byte(i + 1)
            let lower: UInt8 = b0 == 0xF0 ? 0x90 : 0x80
            let upper: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF
            guard b1 >= lower, b1 <= upper,
                  isContinuation(byte(i + 2)), isContinuation(byte(i + 3))
            else { return false }
            i += 4
        default:
            return false
        }
    }
    return true
}
