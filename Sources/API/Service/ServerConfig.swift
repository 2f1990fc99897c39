import EventLog
import Projections

/// Everything `serve` can be told.
public struct ServerConfig: Sendable {
    public var dataDirectory: String
    public var host: String
    public var port: Int
    public var durability: String
    public var passwordIterations: Int
    public var accessLifetime: Int64
    public var refreshLifetime: Int64
    /// WebSocket messages per second per connection, and the burst allowed.
    public var socketRate: Double
    public var socketBurst: Double
    /// Failed logins allowed per username and per client address before 429.
    public var loginFailuresPerUser: Double
    public var loginFailuresPerAddress: Double
    public var secret: [UInt8]
    /// The master key of the key store; nil: `<data>/master-key` (created once).
    public var masterKey: MasterKey?
    /// Test hook (`CHAT_ES_CRASH_POINT`): the process kills itself with SIGKILL at this named
    /// point of an account deletion, so crash campaigns can stop it between two steps.
    public var crashPoint: String?
    /// When the server writes snapshots of its views.
    public var snapshots: SnapshotPolicy
    /// The PostgreSQL database that holds the log; nil: the segment files in the data
    /// directory are the log. With it, they are a cache of the database.
    public var postgres: PostgresURL?
    /// Turns and heartbeats of the nodes sharing that database.
    public var cluster = ClusterSettings()

    public init(dataDirectory: String = "data", host: String = "127.0.0.1", port: Int = 8000,
                durability: String = "always", passwordIterations: Int = 1_500_000,
                accessLifetime: Int64 = 300, refreshLifetime: Int64 = 86_400,
                socketRate: Double = 500, socketBurst: Double = 2000,
                loginFailuresPerUser: Double = 10, loginFailuresPerAddress: Double = 100,
                secret: [UInt8] = [], masterKey: MasterKey? = nil, crashPoint: String? = nil,
                snapshots: SnapshotPolicy = SnapshotPolicy(), postgres: PostgresURL? = nil) {
        self.postgres = postgres
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.durability = durability
        self.passwordIterations = passwordIterations
        self.accessLifetime = accessLifetime
        self.refreshLifetime = refreshLifetime
        self.socketRate = socketRate
        self.socketBurst = socketBurst
        self.loginFailuresPerUser = loginFailuresPerUser
        self.loginFailuresPerAddress = loginFailuresPerAddress
        self.secret = secret
        self.masterKey = masterKey
        self.crashPoint = crashPoint
        self.snapshots = snapshots
    }
}
