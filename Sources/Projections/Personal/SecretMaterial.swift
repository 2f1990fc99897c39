/// The one rule for every secret chat-es is given (the JWT key, the master key): at least
/// 32 bytes. A value of only hex digits is read as hex (so `openssl rand -hex 32` gives 32
/// bytes, not 64 characters of which half the entropy is missing); anything else is taken
/// as its UTF-8 bytes.
public enum SecretMaterial {
    public static let minimumBytes = 32

    /// The secret's bytes, or an error naming `source` and how to make a good one.
    public static func bytes(of text: String, source: String) throws -> [UInt8] {
        let trimmed = text.trimmingWhitespace
        let material = hexBytes(trimmed) ?? Array(trimmed.utf8)
        guard material.count >= minimumBytes else {
            throw SecretMaterialError(
                "\(source) holds \(material.count) bytes; a secret must be at least \(minimumBytes) random bytes "
                    + "(make one with `openssl rand -hex 32`)")
        }
        return material
    }

    /// `count` bytes from the system's cryptographic generator, as lowercase hex (for files).
    public static func randomHex(bytes count: Int = 32) -> String {
        var rng = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(count * 2)
        for _ in 0..<count {
            let b = UInt8.random(in: 0...255, using: &rng)
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty, utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = hexValue(utf8[i]), let lo = hexValue(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}

/// A secret that is missing, too short or unreadable; the message says which and what to do.
public struct SecretMaterialError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}

extension String {
    /// Without leading and trailing spaces and newlines (a key file usually ends in one).
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
