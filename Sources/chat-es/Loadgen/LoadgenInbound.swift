import Foundation
import API
import NIOCore

/// What the load generator needs from one server frame, read in one pass over its bytes.
///
/// A run reads two frames per message (an ack and a delivery), so this skips building a
/// dictionary of every field: it finds the top-level string fields it needs and reads
/// them in place. Frames whose needed fields hold escapes (never ours, but the server
/// may choose to escape) go through the full JSON parser instead.
struct LoadgenInbound {
    enum Kind: Equatable {
        case ack, message, error, other
    }

    /// The run's own strings, as bytes, to compare fields against.
    struct Run {
        /// `<run id>-<sender index>-`: the client ids this socket sends start with it.
        let clientIdPrefix: [UInt8]
        let username: [UInt8]
        /// `lg <run id> `: the bodies of this run's messages start with it.
        let bodyPrefix: [UInt8]
    }

    var kind: Kind = .other
    /// The seq of one of this socket's sends named by `client_id`, if it is one.
    var sendSeq: Int?
    /// The send time of a delivery of this run addressed to this user.
    var sentAt: UInt64?
    var code: String?

    /// Where the needed string fields lie in some bytes (the frame, or decoded copies).
    private struct Fields {
        var type: Range<Int>?
        var clientId: Range<Int>?
        var code: Range<Int>?
        var message: Range<Int>?
        var receiver: Range<Int>?
    }

    /// The keys `scan` keeps, in the order of its switch.
    private static let knownKeys: [StaticString] = ["type", "client_id", "code", "message", "receiver"]

    /// Byte equality without a generic element walk (this runs twice per key of every frame).
    private static func same(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    private static func same(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        same(bytes, UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private static func same(_ bytes: UnsafeRawBufferPointer, _ other: [UInt8]) -> Bool {
        other.withUnsafeBytes { same(bytes, $0) }
    }

    /// Nil when the frame is not a JSON object.
    init?(_ frame: ByteBuffer, run: Run) {
        let read: LoadgenInbound?? = frame.withUnsafeReadableBytes { bytes in
            guard let fields = Self.scan(bytes) else { return .some(nil) }  // needs the parser
            return .some(LoadgenInbound(fields, in: bytes, run: run))
        }
        if case let .some(.some(inbound)) = read {
            self = inbound
            return
        }
        // Malformed, or a needed field holds an escape: decode the frame fully.
        guard case let .object(object)? = try? JSONParser.parse(String(buffer: frame)) else { return nil }
        var storage: [UInt8] = []
        var fields = Fields()
        func place(_ key: String) -> Range<Int>? {
            guard let value = object[key]?.stringValue else { return nil }
            let start = storage.count
            storage.append(contentsOf: value.utf8)
            return start..<storage.count
        }
        fields.type = place("type")
        fields.clientId = place("client_id")
        fields.code = place("code")
        fields.message = place("message")
        fields.receiver = place("receiver")
        self = storage.withUnsafeBytes { LoadgenInbound(fields, in: $0, run: run) }
    }

    private init(_ fields: Fields, in bytes: UnsafeRawBufferPointer, run: Run) {
        func slice(_ range: Range<Int>?) -> UnsafeRawBufferPointer? { range.map { UnsafeRawBufferPointer(rebasing: bytes[$0]) } }
        if let type = slice(fields.type) {
            if Self.same(type, "message.ack") {
                kind = .ack
            } else if Self.same(type, "message") {
                kind = .message
            } else if Self.same(type, "error") {
                kind = .error
            }
        }
        if let id = slice(fields.clientId) { sendSeq = Self.number(after: run.clientIdPrefix, in: id) }
        code = slice(fields.code).map { String(decoding: $0, as: UTF8.self) }
        if kind == .message, let receiver = slice(fields.receiver), Self.same(receiver, run.username),
           let body = slice(fields.message),
           let time = Self.number(after: run.bodyPrefix, in: body, stopAt: UInt8(ascii: " ")) {
            sentAt = UInt64(time)
        }
    }

    /// The decimal number that follows `prefix` in `bytes` (up to `stopAt` or the end).
    private static func number(after prefix: [UInt8], in bytes: UnsafeRawBufferPointer, stopAt: UInt8? = nil) -> Int? {
        guard bytes.count > prefix.count, same(UnsafeRawBufferPointer(rebasing: bytes.prefix(prefix.count)), prefix) else { return nil }
        var value = 0
        var digits = 0
        for byte in bytes.dropFirst(prefix.count) {
            if byte == stopAt { break }
            guard byte >= 48, byte <= 57, digits < 18 else { return nil }
            value = value * 10 + Int(byte - 48)
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    // MARK: scanning

    /// The needed top-level string fields; nil if the frame is malformed or a needed field
    /// holds an escape (then the full parser decides).
    private static func scan(_ bytes: UnsafeRawBufferPointer) -> Fields? {
        var i = 0
        let n = bytes.count
        func skipSpace() { while i < n, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 } }
        /// The string starting at `i` (a quote); sets `escaped` if it holds a backslash.
        func string(_ escaped: inout Bool) -> Range<Int>? {
            guard i < n, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            let start = i
            while i < n, bytes[i] != UInt8(ascii: "\"") {
                if bytes[i] == UInt8(ascii: "\\") { escaped = true; i += 1 }
                i += 1
            }
            guard i < n else { return nil }
            i += 1
            return start..<(i - 1)
        }
        /// Skips a non-string value: number, literal, or a nested object/array.
        func skipValue() -> Bool {
            var depth = 0
            var ignored = false
            while i < n {
                switch bytes[i] {
                case UInt8(ascii: "\""): guard string(&ignored) != nil else { return false }; continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { return true }
                    depth -= 1
                case UInt8(ascii: ","): if depth == 0 { return true }
                default: break
                }
                i += 1
            }
            return false
        }
        skipSpace()
        guard i < n, bytes[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        var fields = Fields()
        while true {
            skipSpace()
            if i < n, bytes[i] == UInt8(ascii: "}") { return fields }
            var keyEscaped = false
            guard let key = string(&keyEscaped), !keyEscaped else { return nil }
            skipSpace()
            guard i < n, bytes[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            skipSpace()
            guard i < n else { return nil }
            if bytes[i] == UInt8(ascii: "\"") {
                var escaped = false
                guard let value = string(&escaped) else { return nil }
                let name = UnsafeRawBufferPointer(rebasing: bytes[key])
                let known = knownKeys.firstIndex { same(name, $0) }
                if let known {
                    if escaped { return nil }
                    switch known {
                    case 0: fields.type = value
                    case 1: fields.clientId = value
                    case 2: fields.code = value
                    case 3: fields.message = value
                    default: fields.receiver = value
                    }
                }
            } else if !skipValue() {
                return nil
            }
            skipSpace()
            guard i < n else { return nil }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            guard bytes[i] == UInt8(ascii: "}") else { return nil }
            return fields
        }
    }
}
