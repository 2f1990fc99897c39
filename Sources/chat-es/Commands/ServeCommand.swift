import API
import EventLog
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Projections
import ServiceLifecycle

/// `chat-es serve`: replays the log into the views (503 until done), appends `ServerStarted`,
/// and serves the REST and WebSocket API until SIGTERM/SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the chat API from the event log in a data directory.")

    @Option(help: "Data directory (the log is kept in <data>/log).")
    var data = "data"
    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"
    @Option(help: "Port to listen on.")
    var port = 8000
    @Option(help: "Durability: always (fsync before ack), interval=MS, or never.")
    var fsync = "always"
    @Option(help: "PBKDF2 iterations for new password hashes (env CHAT_ES_PASSWORD_ITERATIONS).")
    var passwordIterations: Int?
    @Option(help: "Access token lifetime, seconds.")
    var accessLifetime: Int64 = 300
    @Option(help: "Refresh token (session) lifetime, seconds.")
    var refreshLifetime: Int64 = 86_400
    @Option(help: "WebSocket messages per second allowed per connection.")
    var socketRate: Double = 500
    @Option(help: ArgumentHelp("Write a snapshot in the background after this many new events (0: only at shutdown).", valueName: "N"))
    var snapshotEveryEvents: UInt64 = 1_000_000
    @Option(help: ArgumentHelp("…or after this many seconds, if anything happened.", valueName: "S"))
    var snapshotEverySeconds: Double = 600
    @Option(help: ArgumentHelp("Snapshots to keep.", valueName: "K"))
    var snapshotKeep = 3
    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"
    @Option(help: ArgumentHelp("Keep the log in this PostgreSQL database (env CHAT_ES_POSTGRES_URL); <data>/log becomes its local cache.", valueName: "URL"))
    var postgres: String?

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "chat-es")
        MetricsExport.bootstrap()
        let env = ProcessInfo.processInfo.environment
        let iterations = passwordIterations ?? env["CHAT_ES_PASSWORD_ITERATIONS"].flatMap(Int.init) ?? 1_500_000
        guard Durability(parsing: fsync) != nil else {
            throw ValidationError("--fsync must be always, never or interval=MS")
        }
        let postgresURL: PostgresURL?
        do {
            postgresURL = try (postgres ?? env["CHAT_ES_POSTGRES_URL"]).map { try PostgresURL($0) }
        } catch {
            throw ValidationError("--postgres: \(error)")
        }
        let secret: [UInt8]
        var masterKey: MasterKey?
        do {
            if postgresURL != nil && (env["CHAT_ES_SECRET"] ?? "").isEmpty {
                // A secret made up by one node would sign tokens no other node accepts.
                throw SharedSecretMissing()
            }
            secret = try loadSecret(dataDirectory: data, environment: env)
            // The file is created only once the log is known to be in the encrypted format.
            masterKey = try MasterKey.load(dataDirectory: data, environment: env, create: false)
            if postgresURL != nil && masterKey == nil {
                // Every node derives the same master key from the secret they share.
                masterKey = try MasterKey.derived(fromSharedSecret: secret)
            }
        } catch {
            // A bad secret is not a usage error: say only what is wrong and how to fix it.
            FileHandle.standardError.write(Data("chat-es: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let config = ServerConfig(
            dataDirectory: data, host: host, port: port, durability: fsync, passwordIterations: iterations,
            accessLifetime: accessLifetime, refreshLifetime: refreshLifetime,
            socketRate: socketRate, socketBurst: max(socketRate * 4, 100), secret: secret,
            masterKey: masterKey, crashPoint: env["CHAT_ES_CRASH_POINT"],
            snapshots: SnapshotPolicy(events: snapshotEveryEvents, seconds: max(snapshotEverySeconds, 1), keep: max(snapshotKeep, 1)),
            postgres: postgresURL)
        let service = await ChatService(config: config, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service.application()), .init(service: SocketCloser(service: service))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        let replay = Task {
            do {
                try await service.start()
            } catch {
                logger.critical("cannot start: \(error)")
                Foundation.exit(1)
            }
        }
        try await group.run()
        replay.cancel()
        await service.shutdown()
        logger.info("stopped; log flushed")
    }
}

/// On graceful shutdown, closes every WebSocket (1001) before the HTTP server stops.
struct SocketCloser: Service {
    let service: ChatService

    func run() async throws {
        try? await gracefulShutdown()
        service.beginShutdown()
    }
}

/// `serve --postgres` without `CHAT_ES_SECRET`: the nodes would not share their token secret.
struct SharedSecretMissing: Error, CustomStringConvertible {
    var description: String {
        "with --postgres, set CHAT_ES_SECRET (at least 32 random bytes, the same on every node): tokens signed by one node must be accepted by the others, and the master key that wraps the users' keys is derived from it unless CHAT_ES_MASTER_KEY is set"
    }
}
