/// A minimal streaming JSON builder for audit lines and view dumps.
///
/// Written by hand because audits render millions of events and need a fixed key
/// order; the escaper handles quote, backslash and every control byte below 0x20.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// One flag per open container: has it received an element yet?
    private var hasElement: [Bool] = []
    /// A key was just written, so the next value needs no comma.
    private var afterKey = false

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        guard let last = hasElement.indices.last else { return }
        if hasElement[last] { bytes.append(UInt8(ascii: ",")) }
        hasElement[last] = true
    }

    mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        hasElement.append(false)
    }

    mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        hasElement.removeLast()
    }

    mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        hasElement.append(false)
    }

    mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        hasElement.removeLast()
    }

    mutating func key(_ k: String) {
        separate()
        appendJSONString(k, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    mutating func string(_ s: String) {
        separate()
        appendJSONString(s, to: &bytes)
    }

    mutating func unsigned<T: UnsignedInteger>(_ v: T) {
        separate()
        appendDecimal(UInt64(v), to: &bytes)
    }

    mutating func signed(_ v: Int64) {
        separate()
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDecimal(v.magnitude, to: &bytes)
    }

    mutating func double(_ v: Double) {
        separate()
        if v.isFinite {
            bytes.append(contentsOf: "\(v)".utf8)
        } else {
            bytes.append(contentsOf: "null".utf8)
        }
    }

    mutating func bool(_ v: Bool) {
        separate()
        bytes.append(contentsOf: (v ? "true" : "false").utf8)
    }

    mutating func null() {
        separate()
        bytes.append(contentsOf: "null".utf8)
    }

    mutating func time(_ micros: Int64) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        appendTimestamp(micros, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func field(_ k: String, _ v: String) { key(k); string(v) }
    mutating func field<T: UnsignedInteger>(_ k: String, _ v: T) { key(k); unsigned(v) }
    mutating func field(_ k: String, int v: Int) { key(k); signed(Int64(v)) }
    mutating func field(_ k: String, time v: Int64) { key(k); time(v) }
    mutating func field(_ k: String, time v: Int64?) {
        key(k)
        if let v { time(v) } else { null() }
    }
    mutating func field(_ k: String, bool v: Bool) { key(k); bool(v) }
    mutating func field(_ k: String, optional v: String?) {
        key(k)
        if let v { string(v) } else { null() }
    }
}

/// `s` as a quoted JSON string literal.
public func jsonQuoted(_ s: String) -> String {
    var out = [UInt8]()
    out.reserveCapacity(s.utf8.count + 2)
    appendJSONString(s, to: &out)
    return String(decoding: out, as: UTF8.self)
}

public func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    var s = s
    s.withUTF8 { utf8 in
        // Runs that need no escaping (nearly all text) are copied in one go.
        var runStart = 0
        for i in 0..<utf8.count {
            let b = utf8[i]
            guard b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 else { continue }
            if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
            runStart = i + 1
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(b)
            default:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigit(b >> 4))
                out.append(hexDigit(b & 0xF))
            }
        }
        // Multi-byte UTF-8 passes through: JSON text is UTF-8 anyway.
        if runStart < utf8.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
    }
    out.append(UInt8(ascii: "\""))
}

private func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}
