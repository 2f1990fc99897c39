import Crypto

/// Builds the HMAC key from raw secret bytes.
enum SymmetricKeyShim {
    static func make(_ secret: [UInt8]) -> SymmetricKey { SymmetricKey(data: secret) }
}
