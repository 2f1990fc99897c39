import Crypto

/// The header of one batch, stored in an LZ4 skippable frame just before the batch's LZ4 frame.
///
/// Each header carries the hash of the previous one, so the headers form a hash chain;
/// `recordsHash` ties the chain to the record bytes themselves, so a rewritten record
/// breaks the chain even when its LZ4 checksum was recomputed.
public struct BatchHeader: Sendable, Equatable {
    public static let formatVersion: UInt16 = 1
    /// Skippable-frame magic (0x184D2A50–0x184D2A5F); `lz4 -dc` skips these frames.
    static let magic: UInt32 = 0x184D_2A50
    static let contentSize = 136
    /// Magic, size, content.
    static let encodedSize = 8 + contentSize

    public var version: UInt16 = BatchHeader.formatVersion
    public var count: UInt32
    public var firstSeq: UInt64
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64
    public var rawLength: UInt32
    public var frameLength: UInt32
    public var prevHash: [UInt8]
    public var recordsHash: [UInt8]
    public var headerHash: [UInt8]

    public var lastSeq: UInt64 { firstSeq + UInt64(count) - 1 }

    init(count: UInt32, firstSeq: UInt64, firstTimestamp: Int64, lastTimestamp: Int64,
         rawLength: UInt32, frameLength: UInt32, prevHash: [UInt8], recordsHash: [UInt8]) {
        self.count = count
        self.firstSeq = firstSeq
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
        self.rawLength = rawLength
        self.frameLength = frameLength
        self.prevHash = prevHash
        self.recordsHash = recordsHash
        self.headerHash = []
        self.headerHash = Array(SHA256.hash(data: hashedBytes()))
    }

    /// The fields covered by `headerHash` (everything but the hash itself).
    private func hashedBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(BatchHeader.contentSize)
        appendLE(version, to: &out)
        appendLE(UInt16(0), to: &out)
        appendLE(count, to: &out)
        appendLE(firstSeq, to: &out)
        appendLE(UInt64(bitPattern: firstTimestamp), to: &out)
        appendLE(UInt64(bitPattern: lastTimestamp), to: &out)
        appendLE(rawLength, to: &out)
        appendLE(frameLength, to: &out)
        out.append(contentsOf: prevHash)
        out.append(contentsOf: recordsHash)
        return out
    }

    func encode(into out: inout [UInt8]) {
        appendLE(BatchHeader.magic, to: &out)
        appendLE(UInt32(BatchHeader.contentSize), to: &out)
        out.append(contentsOf: hashedBytes())
        out.append(contentsOf: headerHash)
    }

    /// Parses a header at the start of `bytes`; nil with a reason when it is not a valid header.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<BatchHeader, HeaderFault> {
        guard bytes.count >= encodedSize else { return .failure(.truncated) }
        func u16(_ o: Int) -> UInt16 { bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self).littleEndian }
        func u32(_ o: Int) -> UInt32 { bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian }
        func u64(_ o: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian }
        guard u32(0) == magic else { return .failure(.damaged("no batch header magic")) }
        guard u32(4) == UInt32(contentSize) else { return .failure(.damaged("batch header has size \(u32(4))")) }
        let c = 8
        guard u16(c) == formatVersion else { return .failure(.damaged("unknown batch format version \(u16(c))")) }
        var h = BatchHeader(
            count: u32(c + 4), firstSeq: u64(c + 8),
            firstTimestamp: Int64(bitPattern: u64(c + 16)), lastTimestamp: Int64(bitPattern: u64(c + 24)),
            rawLength: u32(c + 32), frameLength: u32(c + 36),
            prevHash: Array(bytes[(c + 40)..<(c + 72)]), recordsHash: Array(bytes[(c + 72)..<(c + 104)]))
        let stored = Array(bytes[(c + 104)..<(c + 136)])
        guard stored == h.headerHash else { return .failure(.damaged("batch header checksum mismatch")) }
        guard h.count > 0 else { return .failure(.damaged("batch header counts no records")) }
        h.headerHash = stored
        return .success(h)
    }

    static let zeroHash = [UInt8](repeating: 0, count: 32)
}

/// Why bytes at an offset are not a batch header.
enum HeaderFault: Error {
    /// Fewer bytes than a header: a torn write at the tail.
    case truncated
    case damaged(String)

    var reason: String {
        switch self {
        case .truncated: return "truncated batch header"
        case let .damaged(why): return why
        }
    }
}

/// The hex form used to print digests.
public func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// SHA-256 over raw bytes, for callers (tests, tools) that should not import Crypto themselves.
public enum SHA256Shim {
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        Array(SHA256.hash(data: bytes))
    }
}
