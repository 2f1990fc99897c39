/// Why the log refused to open, read or append.
public enum EventLogError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A sealed segment (or the middle of the active one) is damaged: the file and byte offset name it.
    case corrupt(file: String, offset: Int, reason: String)
    /// A segment is missing or out of order, so the seqs would have a gap.
    case gap(file: String, expected: UInt64, found: UInt64)
    /// An earlier write failed; the writer stopped and acknowledges nothing more.
    case writerFailed(String)
    /// The log was closed.
    case closed
    case io(String)
    case compression(String)
    /// The requested seq is not in the log.
    case notFound(UInt64)

    public var description: String {
        switch self {
        case let .corrupt(file, offset, reason): return "corrupt log: \(file) at byte \(offset): \(reason)"
        case let .gap(file, expected, found): return "log gap: \(file) starts at seq \(found), expected \(expected) (a segment is missing or renamed)"
        case let .writerFailed(why): return "log writer stopped after a write error: \(why)"
        case .closed: return "log is closed"
        case let .io(why): return "log I/O error: \(why)"
        case let .compression(why): return "LZ4 compression failed: \(why)"
        case let .notFound(seq): return "seq \(seq) is not in the log"
        }
    }
}
