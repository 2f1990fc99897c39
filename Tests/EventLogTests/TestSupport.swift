import Foundation
@testable import EventLog

/// A temporary directory removed when the value is dropped by the test.
final class TempDir {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "chat-es-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func record(_ i: Int, size: Int = 40) -> NewRecord {
    var payload = Array("payload-\(i)-".utf8)
    while payload.count < size { payload.append(UInt8(97 + (payload.count + i) % 26)) }
    return NewRecord(timestamp: 1_700_000_000_000_000 + Int64(i), type: UInt16(i % 7 + 1), version: 1, payload: payload)
}

func allRecords(_ dir: String, from: UInt64 = 1) throws -> [Record] {
    var out: [Record] = []
    try LogCursor(directory: dir, from: from).poll { h, p in
        out.append(Record(seq: h.seq, timestamp: h.timestamp, type: h.type, version: h.version, payload: Array(p)))
        return true
    }
    return out
}

func segmentFiles(_ dir: String) -> [String] {
    (try? Segments.list(dir).map(\.path)) ?? []
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? -1
}

func copyDir(_ from: String, _ to: String) throws {
    try? FileManager.default.removeItem(atPath: to)
    try FileManager.default.copyItem(atPath: from, toPath: to)
}

func flipByte(_ path: String, at offset: Int) throws {
    var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
    bytes[offset] ^= 0x5A
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
