import NIOCore

/// The text the load generator puts on the wire, and reads back from deliveries.
///
/// A message text is `lg <run id> <send time ns> <seq>[ xxx…]`: the `message`
/// frame a receiver gets carries no client_id, so the send time travels in the
/// text, and the run id keeps other traffic (earlier runs, other clients) out
/// of the figures.
enum LoadgenFrames {
    /// The contract's send frame for message `seq`, written straight into `buffer`:
    /// `{"message":"lg <run> <sentAt> <seq>[ xxx…]","receiver":…,"client_id":"<run>-<sender>-<seq>"}`.
    /// Usernames, run ids and bodies hold only letters, digits, spaces and `_-`, so nothing
    /// needs escaping; `LoadgenInbound` reads the send time and seq back.
    static func writeSend(into buffer: inout ByteBuffer, receiver: String, runID: String, senderIndex: Int,
                          sentAt: UInt64, seq: Int, minBytes: Int) {
        let bodyStart = buffer.writerIndex + 12
        buffer.writeStaticString("{\"message\":\"lg ")
        buffer.writeString(runID)
        buffer.writeStaticString(" ")
        buffer.writeString(String(sentAt))
        buffer.writeStaticString(" ")
        buffer.writeString(String(seq))
        let bodyLength = buffer.writerIndex - bodyStart
        if bodyLength < minBytes {
            buffer.writeStaticString(" ")
            buffer.writeRepeatingByte(UInt8(ascii: "x"), count: max(0, minBytes - bodyLength - 1))
        }
        buffer.writeStaticString("\",\"receiver\":\"")
        buffer.writeString(receiver)
        buffer.writeStaticString("\",\"client_id\":\"")
        buffer.writeString(runID)
        buffer.writeStaticString("-")
        buffer.writeString(String(senderIndex))
        buffer.writeStaticString("-")
        buffer.writeString(String(seq))
        buffer.writeStaticString("\"}")
    }

    /// Pause before re-sending a `rate_limited` frame: 50 ms, doubling per attempt, at most 1 s.
    static func retryPause(attempt: Int) -> Duration {
        .milliseconds(min(1000, 50 << min(max(attempt - 1, 0), 5)))
    }
}
