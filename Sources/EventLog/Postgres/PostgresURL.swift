import Foundation
import PostgresNIO

/// A `postgres://user[:password]@host[:port]/database` address, or with `?host=/dir` for a Unix
/// socket. TLS is not negotiated: the nodes and the database are meant to share a private network.
public struct PostgresURL: Sendable, CustomStringConvertible {
    public private(set) var configuration: PostgresConnection.Configuration
    /// The address without its password, for messages.
    public let description: String

    public init(_ text: String) throws {
        guard let parts = URLComponents(string: text), ["postgres", "postgresql"].contains(parts.scheme ?? "") else {
            throw PostgresURLError(reason: "not a postgres:// URL")
        }
        let user = parts.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        let password = parts.password.flatMap { $0.removingPercentEncoding }
        let path = parts.path.hasPrefix("/") ? String(parts.path.dropFirst()) : parts.path
        let database = path.isEmpty ? user : path
        let socketDirectory = parts.queryItems?.first { $0.name == "host" }?.value
        let port = parts.port ?? 5432
        var configuration: PostgresConnection.Configuration
        if let socketDirectory, socketDirectory.hasPrefix("/") {
            configuration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user,
                                  password: password, database: database)
            description = "postgres://\(user)@[\(socketDirectory)]:\(port)/\(database)"
        } else {
            guard let host = parts.host, !host.isEmpty else { throw PostgresURLError(reason: "no host") }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: .disable)
            description = "postgres://\(user)@\(host):\(port)/\(database)"
        }
        // An unreachable host should turn into 503s soon, not after NIO's default 10 s.
        configuration.options.connectTimeout = .seconds(2)
        self.configuration = configuration
    }

    /// The `application_name` its connections give, if `named` set one.
    public var applicationName: String? {
        configuration.options.additionalStartupParameters.first { $0.0 == "application_name" }?.1
    }

    /// The same address, its connections named `name` (`application_name` in `pg_stat_activity`).
    public func named(_ name: String) -> PostgresURL {
        var copy = self
        copy.configuration.options.additionalStartupParameters = [("application_name", name)]
        return copy
    }
}

/// A PostgreSQL address that cannot be used.
public struct PostgresURLError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { "bad PostgreSQL URL: \(reason)" }
}
