import Crypto
import Foundation
import NIOPosix
import _CryptoExtras

/// Django-compatible PBKDF2-SHA256 hashes (`pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`),
/// computed on NIO's blocking thread pool so a login never stalls the event loops.
public struct PasswordHasher: Sendable {
    public var iterations: Int

    public init(iterations: Int) { self.iterations = max(1, iterations) }

    public func hash(_ password: String) async throws -> String {
        let salt = Self.randomSalt()
        let iterations = self.iterations
        return try await NIOThreadPool.singleton.runIfActive {
            let digest = try Self.derive(password, salt: salt, iterations: iterations)
            return "pbkdf2_sha256$\(iterations)$\(salt)$\(digest)"
        }
    }

    /// Checks `password` against `encoded` in constant time; a malformed hash never matches.
    public func verify(_ password: String, against encoded: String) async throws -> Bool {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2_sha256", let iterations = Int(parts[1]), iterations > 0,
              iterations <= 100_000_000 else { return false }
        let salt = String(parts[2])
        let expected = Array(parts[3].utf8)
        return try await NIOThreadPool.singleton.runIfActive {
            let actual = Array(try Self.derive(password, salt: salt, iterations: iterations).utf8)
            return Self.constantTimeEqual(actual, expected)
        }
    }

    /// Spends the same work as a real check, for logins of unknown users.
    public func burn(_ password: String) async throws {
        _ = try await verify(password, against: "pbkdf2_sha256$\(iterations)$burnsaltburnsalt$AAAA")
    }

    static func derive(_ password: String, salt: String, iterations: Int) throws -> String {
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: Array(salt.utf8), using: .sha256,
            outputByteCount: 32, unsafeUncheckedRounds: iterations)
        return key.withUnsafeBytes { Data($0).base64EncodedString() }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<min(a.count, b.count) { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    static func randomSalt() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<22).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] })
    }
}
