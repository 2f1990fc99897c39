import Crypto
import Foundation

/// The key that wraps every user's data key in the key store. It comes from
/// `CHAT_ES_MASTER_KEY` or, when that is unset, from `<data>/master-key` (created once, mode
/// 0600). The wrapping key is derived with HKDF-SHA256, so any ≥ 32-byte secret will do.
public struct MasterKey: Sendable {
    public static let environmentVariable = "CHAT_ES_MASTER_KEY"
    public static let fileName = "master-key"

    let wrapping: SymmetricKey
    /// Where it came from, for messages (never the key itself).
    public let source: String

    public init(material: [UInt8], source: String) throws {
        guard material.count >= SecretMaterial.minimumBytes else {
            throw SecretMaterialError("\(source) holds \(material.count) bytes; the master key must be at least \(SecretMaterial.minimumBytes) random bytes")
        }
        wrapping = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: material), salt: Array("chat-es".utf8),
            info: Array("chat-es key wrapping v1".utf8), outputByteCount: 32)
        self.source = source
    }

    /// The master key of `dataDirectory`: the environment's, else the file's. With `create`,
    /// a missing file is made with 32 random bytes; without, a missing key is nil.
    public static func load(dataDirectory: String, environment: [String: String], create: Bool) throws -> MasterKey? {
        if let text = environment[environmentVariable], !text.isEmpty {
            return try MasterKey(material: SecretMaterial.bytes(of: text, source: environmentVariable),
                                 source: environmentVariable)
        }
        let path = dataDirectory + "/" + fileName
        if let bytes = DurableFiles.readFile(path) {
            let text = String(decoding: bytes, as: UTF8.self)
            return try MasterKey(material: SecretMaterial.bytes(of: text, source: path), source: path)
        }
        guard create else { return nil }
        try DurableFiles.makeDirectory(dataDirectory)
        try DurableFiles.writeAtomically(Array((SecretMaterial.randomHex() + "\n").utf8), to: path,
                                         directory: dataDirectory, mode: 0o600)
        return try load(dataDirectory: dataDirectory, environment: [:], create: false)
    }

    /// The master key of nodes that share a database and were given no `CHAT_ES_MASTER_KEY`:
    /// derived from their shared token secret (HKDF, under the wrapping key's own label, so the
    /// signing key and the wrapping key stay apart).
    public static func derived(fromSharedSecret secret: [UInt8]) throws -> MasterKey {
        try MasterKey(material: secret, source: "CHAT_ES_SECRET (\(environmentVariable) unset)")
    }

    /// Wraps a 32-byte key with AES-256-GCM; `context` (the entry's purpose and owner) is
    /// authenticated, so a wrapped key cannot be moved to another entry.
    func wrap(_ key: UnsafeRawBufferPointer, context: [UInt8]) throws -> [UInt8] {
        let box = try AES.GCM.seal(key, using: wrapping, nonce: AES.GCM.Nonce(), authenticating: context)
        var out: [UInt8] = []
        out.reserveCapacity(Self.wrappedSize)
        box.nonce.withUnsafeBytes { out.append(contentsOf: $0) }
        out.append(contentsOf: box.ciphertext)
        out.append(contentsOf: box.tag)
        return out
    }

    /// The key `wrap` wrapped; throws if this is not the master key it was wrapped with, or the
    /// bytes or context differ.
    func unwrap(_ wrapped: UnsafeRawBufferPointer, context: [UInt8]) throws -> [UInt8] {
        guard wrapped.count == Self.wrappedSize else { throw SealedBoxError.malformed }
        let box = try AES.GCM.SealedBox(
            nonce: AES.GCM.Nonce(data: UnsafeRawBufferPointer(rebasing: wrapped[0..<12])),
            ciphertext: UnsafeRawBufferPointer(rebasing: wrapped[12..<44]),
            tag: UnsafeRawBufferPointer(rebasing: wrapped[44..<60]))
        return [UInt8](try AES.GCM.open(box, using: wrapping, authenticating: context))
    }

    /// Nonce, 32 bytes of ciphertext, tag.
    static let wrappedSize = 12 + 32 + 16
}
