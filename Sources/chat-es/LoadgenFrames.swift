/// The text the load generator puts on the wire, and reads back from deliveries.
///
/// A message text is `lg <run id> <send time ns> <seq>[ xxx…]`: the `message`
/// frame a receiver gets carries no client_id, so the send time travels in the
/// text, and the run id keeps other traffic (earlier runs, other clients) out
/// of the figures.
enum LoadgenFrames {
    static func body(runID: String, sentAt: UInt64, seq: Int, minBytes: Int) -> String {
        var body = "lg \(runID) \(sentAt) \(seq)"
        if body.utf8.count < minBytes {
            body += " " + String(repeating: "x", count: max(0, minBytes - body.utf8.count - 1))
        }
        return body
    }

    /// The contract's send frame. Usernames, client ids and bodies made by `body`
    /// hold only letters, digits, spaces and `_-`, so nothing needs escaping.
    static func send(receiver: String, clientID: String, body: String) -> String {
        #"{"message":"\#(body)","receiver":"\#(receiver)","client_id":"\#(clientID)"}"#
    }

    /// The send time in a body made by `body`, if it belongs to run `runID`.
    static func sendTime(in body: String, runID: String) -> UInt64? {
        let parts = body.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0] == "lg", parts[1] == runID else { return nil }
        return UInt64(parts[2])
    }

    /// Pause before re-sending a `rate_limited` frame: 50 ms, doubling per attempt, at most 1 s.
    static func retryPause(attempt: Int) -> Duration {
        .milliseconds(min(1000, 50 << min(max(attempt - 1, 0), 5)))
    }
}
