import CoreMetrics
import Metrics
import Prometheus

/// The service's swift-metrics instruments; `serve` bootstraps them into Prometheus.
final class ServiceMetrics: Sendable {
    let messages = Counter(label: "chat_messages_stored_total")
    let socketsOpened = Counter(label: "chat_websocket_connections_opened_total")
    let socketsGauge = Gauge(label: "chat_websocket_connections")
    let appendTimer = Timer(label: "chat_log_append_seconds")
    let replayPosition = Gauge(label: "chat_replay_position")

    func request(route: String, status: Int, nanoseconds: UInt64) {
        Counter(label: "chat_http_requests_total", dimensions: [("route", route), ("status", String(status))]).increment()
        Timer(label: "chat_http_request_seconds", dimensions: [("route", route)]).recordNanoseconds(Int64(nanoseconds))
    }

    func appendLatency(_ nanoseconds: UInt64) {
        appendTimer.recordNanoseconds(Int64(nanoseconds))
    }
}

/// The Prometheus registry that `/metrics` renders.
public enum MetricsExport {
    public static let registry = PrometheusCollectorRegistry()

    /// Routes swift-metrics into `registry`; call once per process.
    public static func bootstrap() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// Registry samples plus the gauges read straight from the service.
    static func text(logPosition: UInt64, openSockets: Int, users: Int, durable: UInt64,
                     syncs: (count: UInt64, seconds: Double), commits: (count: UInt64, seconds: Double),
                     start: (head: UInt64, replayed: UInt64, seconds: Double, events: UInt64, snapshot: (seq: UInt64, age: Double)?)) -> String {
        var out = registry.emitToString()
        out += "# TYPE chat_log_fsyncs_total counter\nchat_log_fsyncs_total \(syncs.count)\n"
        out += "# TYPE chat_log_fsync_seconds_total counter\nchat_log_fsync_seconds_total \(syncs.seconds)\n"
        out += "# HELP chat_log_store_commits_total Batches committed to PostgreSQL (0 on the file store).\n"
        out += "# TYPE chat_log_store_commits_total counter\nchat_log_store_commits_total \(commits.count)\n"
        out += "# TYPE chat_log_store_commit_seconds_total counter\nchat_log_store_commit_seconds_total \(commits.seconds)\n"
        out += "# TYPE chat_log_position gauge\nchat_log_position \(logPosition)\n"
        out += "# TYPE chat_log_durable_seq gauge\nchat_log_durable_seq \(durable)\n"
        out += "# TYPE chat_open_sockets gauge\nchat_open_sockets \(openSockets)\n"
        out += "# TYPE chat_users gauge\nchat_users \(users)\n"
        out += "# HELP chat_start_replay_seconds How long the last start took to load its snapshot and replay the log.\n"
        out += "# TYPE chat_start_replay_seconds gauge\nchat_start_replay_seconds \(start.seconds)\n"
        out += "# TYPE chat_start_replayed_events gauge\nchat_start_replayed_events \(start.events)\n"
        if let snapshot = start.snapshot {
            out += "# HELP chat_snapshot_age_seconds Age of the newest snapshot this server wrote or started from.\n"
            out += "# TYPE chat_snapshot_age_seconds gauge\nchat_snapshot_age_seconds \(snapshot.age)\n"
            out += "# TYPE chat_snapshot_seq gauge\nchat_snapshot_seq \(snapshot.seq)\n"
        }
        return out
    }
}
