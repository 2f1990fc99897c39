/// A view of the log: a value changed only by applying events in log order.
///
/// `version` is bumped whenever the view's state or its snapshot encoding changes
/// meaning, so stale snapshots are ignored and the view is rebuilt from the log.
public protocol Projection: Sendable, Equatable {
    static var version: Int { get }
    mutating func apply(_ event: Event, seq: UInt64, timestamp: Int64)
}

// Views ignore events that contradict their state (an unknown user or session, a
// gap in numbering). The Ledger never writes such events; ignoring keeps `apply`
// total, so a damaged log can still be inspected instead of crashing replay.
