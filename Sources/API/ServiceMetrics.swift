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
                     syncs: (count: UInt64, seconds: Double)) -> String {
        var out = registry.emitToString()
        out += "# TYPE chat_log_fsyncs_total counter\nchat_log_fsyncs_total \(syncs.count)\n"
        out += "# TYPE chat_log_fsync_seconds_total counter\nchat_log_fsync_seconds_total \(syncs.seconds)\n"
        out += "# TYPE chat_log_position gauge\nchat_log_position \(logPosition)\n"
        out += "# TYPE chat_log_durable_seq gauge\nchat_log_durable_seq \(durable)\n"
        out += "# TYPE chat_open_sockets gauge\nchat_open_sockets \(openSockets)\n"
        out += "# TYPE chat_users gauge\nchat_users \(users)\n"
        return out
    }
}
