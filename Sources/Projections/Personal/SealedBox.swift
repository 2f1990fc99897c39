import CLZ4
import Crypto
import Foundation

/// A user's data key: the AES-256 key their personal fields are sealed under. It lives only in
/// the key store (wrapped by the master key) and in memory; destroying it erases the user.
public struct DataKey: Sendable {
    let symmetric: SymmetricKey

    public init<Bytes: ContiguousBytes>(bytes: Bytes) { symmetric = SymmetricKey(data: bytes) }

    /// 32 bytes from the system's cryptographic generator.
    public static func random() -> DataKey { DataKey(symmetric: SymmetricKey(size: .bits256)) }

    init(symmetric: SymmetricKey) { self.symmetric = symmetric }

    /// The raw key, for wrapping into the key store only.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try symmetric.withUnsafeBytes(body)
    }
}

/// Which personal field a box holds. It is part of the box's associated data, with the owner's
/// id, so a box cannot be passed off as another field or as another user's.
public enum PersonalField: UInt8, Sendable {
    /// A registration's username and password hash.
    case account = 1
    /// A message's text.
    case messageText = 2
}

/// Personal fields sealed with AES-256-GCM under their owner's data key.
///
/// Layout: `u8 scheme` (1: the plaintext as is; 2: a varint of the plaintext's length, then
/// its LZ4 block), a 12-byte nonce, the ciphertext, the 16-byte tag. Nonces are random
/// (96 bits from the kernel CSPRNG per box, fetched in blocks by `NonceSource`): keys are per
/// user, so a key seals at most one box per message its owner sends, far below the 2^32 boxes per key that NIST SP 800-38D
/// allows random nonces. A counter would need state that survives crashes and, with several
/// writers, coordination; a seq-derived nonce would repeat if a writer that lost its role
/// sealed under a seq another writer then used.
public enum SealedBox {
    static let plainScheme: UInt8 = 1
    static let lz4Scheme: UInt8 = 2
    static let nonceSize = 12
    static let tagSize = 16
    /// Bytes a box adds to its plaintext (when not compressed).
    public static let overhead = 1 + nonceSize + tagSize
    /// Shorter plaintexts are sealed as they are: LZ4 cannot shrink a short text by more than
    /// the length prefix it costs, and the batch's own LZ4 frame no longer sees the text.
    static let compressFrom = 96
    /// A plaintext never grows past this once decompressed (messages are ≤ 64 KiB frames).
    static let maxPlaintext = 1 << 20

    /// Seals `plaintext` under `key`; compresses first when that makes the box smaller.
    public static func seal(_ plaintext: [UInt8], field: PersonalField, owner: UInt32, key: DataKey) throws -> [UInt8] {
        var scheme = plainScheme
        var input = plaintext
        if plaintext.count >= compressFrom, let packed = compress(plaintext), packed.count < plaintext.count {
            scheme = lz4Scheme
            input = packed
        }
        let box = try NonceSource.shared.withNext { nonce in
            try withAssociatedData(scheme, field, owner) { aad in
                try AES.GCM.seal(input, using: key.symmetric, nonce: try AES.GCM.Nonce(data: nonce), authenticating: aad)
            }
        }
        // `combined` is nonce, ciphertext and tag in one buffer: one copy, not one per part
        // (iterating a `Data` copies byte by byte).
        guard let combined = box.combined else { throw SealedBoxError.malformed }
        var out: [UInt8] = []
        out.reserveCapacity(1 + combined.count)
        out.append(scheme)
        combined.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// The plaintext of a box sealed by `seal` with the same field, owner and key; throws for a
    /// wrong key, a damaged box, or a box of another field or owner.
    public static func open(_ box: UnsafeRawBufferPointer, field: PersonalField, owner: UInt32, key: DataKey) throws -> [UInt8] {
        guard box.count >= overhead, let scheme = box.first, scheme == plainScheme || scheme == lz4Scheme else {
            throw SealedBoxError.malformed
        }
        let nonce = try AES.GCM.Nonce(data: UnsafeRawBufferPointer(rebasing: box[1..<(1 + nonceSize)]))
        let sealed = try AES.GCM.SealedBox(
            nonce: nonce,
            ciphertext: UnsafeRawBufferPointer(rebasing: box[(1 + nonceSize)..<(box.count - tagSize)]),
            tag: UnsafeRawBufferPointer(rebasing: box[(box.count - tagSize)...]))
        let opened = try withAssociatedData(scheme, field, owner) { try AES.GCM.open(sealed, using: key.symmetric, authenticating: $0) }
        let bytes = opened.withUnsafeBytes { [UInt8]($0) }
        guard scheme == lz4Scheme else { return bytes }
        guard let plain = decompress(bytes) else { throw SealedBoxError.malformed }
        return plain
    }

    public static func open(_ box: [UInt8], field: PersonalField, owner: UInt32, key: DataKey) throws -> [UInt8] {
        try box.withUnsafeBytes { try open($0, field: field, owner: owner, key: key) }
    }

    static let associatedDataPrefix = Array("chat-es/personal/v1".utf8)

    /// Calls `body` with the box's associated data (a constant, the scheme, the field, the
    /// owner), built on the stack: sealing is per message, and each allocation shows.
    private static func withAssociatedData<R>(_ scheme: UInt8, _ field: PersonalField, _ owner: UInt32,
                                              _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: associatedDataPrefix.count + 6, alignment: 1) { raw in
            associatedDataPrefix.withUnsafeBytes { raw.copyMemory(from: $0) }
            let n = associatedDataPrefix.count
            raw[n] = scheme
            raw[n + 1] = field.rawValue
            raw.storeBytes(of: owner.littleEndian, toByteOffset: n + 2, as: UInt32.self)
            return try body(UnsafeRawBufferPointer(raw))
        }
    }

    private static func compress(_ input: [UInt8]) -> [UInt8]? {
        var w = ByteWriter(capacity: input.count + 16)
        w.varint(UInt64(input.count))
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        var out = [UInt8](repeating: 0, count: bound)
        let written = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                LZ4_compress_default(
                    src.baseAddress?.assumingMemoryBound(to: CChar.self),
                    dst.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(input.count), Int32(bound))
            }
        }
        guard written > 0 else { return nil }
        w.raw(Array(out[0..<Int(written)]))
        return w.bytes
    }

    private static func decompress(_ packed: [UInt8]) -> [UInt8]? {
        packed.withUnsafeBytes { raw -> [UInt8]? in
            var r = ByteReader(raw)
            guard let length = try? r.varint(), let size = Int(exactly: length), size <= maxPlaintext else { return nil }
            let body = UnsafeRawBufferPointer(rebasing: raw[r.offset...])
            var out = [UInt8](repeating: 0, count: size)
            let n = out.withUnsafeMutableBytes { dst in
                LZ4_decompress_safe(
                    body.baseAddress?.assumingMemoryBound(to: CChar.self),
                    dst.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(body.count), Int32(size))
            }
            return n == Int32(size) ? out : nil
        }
    }
}

/// Why a box could not be opened.
public enum SealedBoxError: Error, CustomStringConvertible {
    case malformed

    public var description: String { "malformed sealed field" }
}
