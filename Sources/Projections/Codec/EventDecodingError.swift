/// Why a payload (or a snapshot) could not be read. Never a crash: every read is bounds-checked.
public struct EventDecodingError: Error, Equatable, CustomStringConvertible {
    /// The record's position, when the caller knew it.
    public var seq: UInt64?
    public var message: String

    public init(_ message: String, seq: UInt64? = nil) {
        self.message = message
        self.seq = seq
    }

    /// "seq 42: unknown event type 99", or just the message without a seq.
    public var description: String {
        if let seq { return "seq \(seq): \(message)" }
        return message
    }

    func naming(seq: UInt64) -> EventDecodingError {
        EventDecodingError(message, seq: seq)
    }

    func prefixed(_ context: String) -> EventDecodingError {
        EventDecodingError("\(context): \(message)", seq: seq)
    }
}
