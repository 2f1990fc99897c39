import Logging

/// When the measured run starts and ends (sockets learn it from the start gate).
struct LoadgenSchedule: Sendable {
    let start: ContinuousClock.Instant
    let end: ContinuousClock.Instant
}

/// What all sockets of one run share: parameters, the phase gates and the latency histograms.
struct LoadgenRunContext: Sendable {
    let runID: String
    /// `ws://host:port` without a trailing slash.
    /// One per node; user `i`'s socket goes to `webSocketBases[i % count]`.
    let webSocketBases: [String]
    /// Total target rate over all senders in messages/s; 0 means as fast as the window allows.
    let rate: Double
    let senders: Int
    /// Un-acked frames allowed per sending socket.
    let window: Int
    /// Minimum length of each message text (padded with "x").
    let messageBytes: Int
    /// Opened by the orchestrator once every socket is connected (or failed).
    let start: LoadgenGate<LoadgenSchedule>
    /// Opened after the drain: sockets close.
    let close: LoadgenGate<Void>
    /// Bounds WebSocket connects in flight during setup.
    let connectSlots: LoadgenWindow
    /// Sockets that finished connecting, successfully or not.
    let ready: LoadgenLocked<Int>
    let latencies: LoadgenLatencies
    let logger: Logger
}
