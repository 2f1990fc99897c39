import Foundation

/// The outcome of one load run, and its two renderings (human text, one JSON object).
struct LoadgenReport: Sendable {
    let url: String
    let users: Int
    let senders: Int
    let rate: Double
    let window: Int
    let fanout: Int
    let durationSeconds: Double
    /// Measured length of the sending phase (the divisor of the rates).
    let elapsedSeconds: Double
    let setupSeconds: Double
    let connected: Int
    /// Acks and deliveries counted when sending stopped (the rates use these).
    let ackedAtStop: Int
    let deliveredAtStop: Int
    /// Everything, including the drain.
    let totals: LoadgenCounters
    /// Frames never answered (no ack, no error) by the end of the drain.
    let unacked: Int
    let ack: LoadgenHistogram
    let e2e: LoadgenHistogram
    /// CPU seconds over the sending window: the server's (with `--server-pid`) and ours.
    var serverCPU: Double? = nil
    var ownCPU: Double = 0

    /// CPU microseconds per message acked during the sending window.
    var serverMicrosPerMessage: Double? { serverCPU.map { $0 * 1e6 / Double(max(ackedAtStop, 1)) } }
    var ownMicrosPerMessage: Double { ownCPU * 1e6 / Double(max(ackedAtStop, 1)) }

    var ackedPerSecond: Double { elapsedSeconds > 0 ? Double(ackedAtStop) / elapsedSeconds : 0 }
    var deliveredPerSecond: Double { elapsedSeconds > 0 ? Double(deliveredAtStop) / elapsedSeconds : 0 }
    var undelivered: Int { max(0, totals.acked - totals.delivered) }

    /// The `--json` object: the documented keys first, in the documented order, then extras.
    /// Latency quantiles are null when nothing was measured.
    func json() -> String {
        func number(_ value: Double) -> String {
            value.isFinite ? String(format: "%.3f", value) : "null"
        }
        func latency(_ histogram: LoadgenHistogram) -> String {
            let parts = [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)].map { name, q in
                "\"\(name)\":" + (histogram.quantile(q).map { number($0 / 1e6) } ?? "null")
            }
            return "{" + parts.joined(separator: ",") + "}"
        }
        let codes = totals.errorCodes.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }
        let fields: [(String, String)] = [
            ("delivered_per_s", number(deliveredPerSecond)),
            ("acked_per_s", number(ackedPerSecond)),
            ("ack_ms", latency(ack)),
            ("e2e_ms", latency(e2e)),
            ("errors", "\(totals.errors)"),
            ("users", "\(users)"),
            ("senders", "\(senders)"),
            ("rate", number(rate)),
            ("duration_s", number(durationSeconds)),
            ("elapsed_s", number(elapsedSeconds)),
            ("setup_s", number(setupSeconds)),
            ("sent", "\(totals.sent)"),
            ("acked", "\(totals.acked)"),
            ("delivered", "\(totals.delivered)"),
            ("unacked", "\(unacked)"),
            ("undelivered", "\(undelivered)"),
            ("rate_limited", "\(totals.rateLimited)"),
            ("retries", "\(totals.retries)"),
            ("error_codes", "{" + codes.joined(separator: ",") + "}"),
            ("window", "\(window)"),
            ("fanout", "\(fanout)"),
            ("server_cpu_us_per_msg", serverMicrosPerMessage.map(number) ?? "null"),
            ("loadgen_cpu_us_per_msg", number(ownMicrosPerMessage)),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    func human() -> String {
        func ms(_ nanos: Double?) -> String {
            nanos.map { String(format: "%.3f", $0 / 1e6) } ?? "-"
        }
        func latency(_ name: String, _ histogram: LoadgenHistogram) -> String {
            "\(name) p50 \(ms(histogram.quantile(0.5)))  p99 \(ms(histogram.quantile(0.99)))  "
                + "p999 \(ms(histogram.quantile(0.999)))  max \(ms(histogram.count > 0 ? Double(histogram.max) : nil))  "
                + "mean \(ms(histogram.mean))  (n=\(histogram.count))"
        }
        let pace = rate > 0 ? String(format: "%.1f msg/s target", rate) : "max rate"
        let codes = totals.errorCodes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        var lines = [
            "chat-es loadgen against \(url)",
            "  \(users) users (\(connected) connected), \(senders) senders x \(fanout) receivers, \(pace), "
                + "window \(window), \(String(format: "%.1f", durationSeconds)) s (setup \(String(format: "%.1f", setupSeconds)) s)",
            "  acked      \(String(format: "%.1f", ackedPerSecond)) msg/s   "
                + "(\(ackedAtStop) in \(String(format: "%.2f", elapsedSeconds)) s; \(totals.acked) in total)",
            "  delivered  \(String(format: "%.1f", deliveredPerSecond)) msg/s   "
                + "(\(deliveredAtStop) in \(String(format: "%.2f", elapsedSeconds)) s; \(totals.delivered) in total)",
            "  sent       \(totals.sent) (retries \(totals.retries)), unacked \(unacked), undelivered \(undelivered)",
            "  " + latency("ack ms", ack),
            "  " + latency("e2e ms", e2e),
            "  errors     \(totals.errors) (error frames \(totals.errorFrames), http \(totals.httpFailures), "
                + "connect \(totals.connectFailures), socket \(totals.socketFailures), bad frames \(totals.badFrames)), "
                + "rate_limited \(totals.rateLimited)",
        ]
        lines.append("  cpu        "
            + (serverMicrosPerMessage.map { String(format: "server %.1f µs/msg, ", $0) } ?? "")
            + String(format: "loadgen %.1f µs/msg (sending window only)", ownMicrosPerMessage))
        if !codes.isEmpty { lines.append("  error codes: " + codes.joined(separator: ", ")) }
        if totals.unexpectedAcks > 0 { lines.append("  acks for nothing pending: \(totals.unexpectedAcks)") }
        return lines.joined(separator: "\n")
    }
}
