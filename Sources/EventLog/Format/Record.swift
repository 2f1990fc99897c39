/// One stored record: its global position, when it was written, and an opaque typed payload.
///
/// The log knows nothing about what `type` and `version` mean; the domain layer does.
public struct Record: Sendable, Equatable {
    /// Global position, from 1, without gaps.
    public var seq: UInt64
    /// Microseconds since the Unix epoch, UTC.
    public var timestamp: Int64
    /// Event type id (the domain's numbering).
    public var type: UInt16
    /// Schema version of the payload.
    public var version: UInt16
    /// Encoded event.
    public var payload: [UInt8]

    public init(seq: UInt64, timestamp: Int64, type: UInt16, version: UInt16, payload: [UInt8]) {
        self.seq = seq
        self.timestamp = timestamp
        self.type = type
        self.version = version
        self.payload = payload
    }
}

/// A record that has not been given a position yet.
public struct NewRecord: Sendable, Equatable {
    public var timestamp: Int64
    public var type: UInt16
    public var version: UInt16
    public var payload: [UInt8]

    public init(timestamp: Int64, type: UInt16, version: UInt16, payload: [UInt8]) {
        self.timestamp = timestamp
        self.type = type
        self.version = version
        self.payload = payload
    }
}

/// The fixed part of a record, handed out with a borrowed payload by the fast scan paths.
public struct RecordHeader: Sendable, Equatable {
    public var seq: UInt64
    public var timestamp: Int64
    public var type: UInt16
    public var version: UInt16
    public var payloadLength: Int

    public init(seq: UInt64, timestamp: Int64, type: UInt16, version: UInt16, payloadLength: Int) {
        self.seq = seq
        self.timestamp = timestamp
        self.type = type
        self.version = version
        self.payloadLength = payloadLength
    }
}

/// Record framing inside a batch's LZ4 frame: little-endian
/// `u32 payload length, u64 seq, i64 timestamp, u16 type, u16 version`, then the payload.
enum RecordLayout {
    static let headerSize = 24

    static func encode(_ seq: UInt64, _ r: NewRecord, into out: inout [UInt8]) {
        appendLE(UInt32(r.payload.count), to: &out)
        appendLE(seq, to: &out)
        appendLE(UInt64(bitPattern: r.timestamp), to: &out)
        appendLE(r.type, to: &out)
        appendLE(r.version, to: &out)
        out.append(contentsOf: r.payload)
    }

    /// Calls `body` for each record in `raw`; returns false if the bytes are not whole records.
    static func forEach(
        in raw: UnsafeRawBufferPointer,
        _ body: (RecordHeader, UnsafeRawBufferPointer) throws -> Bool
    ) throws -> (complete: Bool, count: Int, stopped: Bool) {
        var offset = 0
        var count = 0
        while offset < raw.count {
            guard raw.count - offset >= headerSize else { return (false, count, false) }
            let len = Int(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
            let seq = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt64.self).littleEndian
            let ts = Int64(bitPattern: raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt64.self).littleEndian)
            let type = raw.loadUnaligned(fromByteOffset: offset + 20, as: UInt16.self).littleEndian
            let version = raw.loadUnaligned(fromByteOffset: offset + 22, as: UInt16.self).littleEndian
            let start = offset + headerSize
            guard raw.count - start >= len else { return (false, count, false) }
            let header = RecordHeader(seq: seq, timestamp: ts, type: type, version: version, payloadLength: len)
            let payload = UnsafeRawBufferPointer(rebasing: raw[start..<(start + len)])
            count += 1
            offset = start + len
            if try !body(header, payload) { return (true, count, true) }
        }
        return (true, count, false)
    }
}

@inline(__always)
func appendLE<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
}
