import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
@testable import API
import EventLog
import Projections

/// A service over a fresh temporary data directory, with cheap password hashing.
final class TestData {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "chat-es-api-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A service over this directory; `start: false` leaves it as it is while the log replays.
    func service(start: Bool = true, accessLifetime: Int64 = 300, refreshLifetime: Int64 = 86_400,
                 snapshots: SnapshotPolicy = SnapshotPolicy(events: 0), postgres: PostgresURL? = nil) async throws -> ChatService {
        var config = ServerConfig(dataDirectory: path, port: 0, durability: "always", passwordIterations: 1000,
                                  accessLifetime: accessLifetime, refreshLifetime: refreshLifetime,
                                  socketRate: 1000, socketBurst: 1000, loginFailuresPerUser: 3,
                                  secret: Array("test-secret-test-secret-test-secret!".utf8), snapshots: snapshots,
                                  postgres: postgres)
        if postgres != nil { config.masterKey = try MasterKey.derived(fromSharedSecret: config.secret) }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let service = await ChatService(config: config, logger: logger)
        if start { try await service.start() }
        return service
    }
}

func jsonBody(_ fields: [String: Any]) -> ByteBuffer {
    ByteBuffer(data: try! JSONSerialization.data(withJSONObject: fields))
}

func object(_ response: TestResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
}

extension TestClientProtocol {
    func post(_ uri: String, _ fields: [String: Any], token: String? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: .post, headers: headers, body: jsonBody(fields))
    }

    func get(_ uri: String, token: String) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"])
    }

    /// Registers and logs in; returns (id, access, refresh).
    func account(_ name: String, password: String = "pw-long-enough") async throws -> (id: Int, access: String, refresh: String) {
        let r = try await post("/api/register/", ["username": name, "password": password])
        let id = object(r)["id"] as? Int ?? -1
        let l = object(try await post("/api/login/", ["username": name, "password": password]))
        return (id, l["access"] as? String ?? "", l["refresh"] as? String ?? "")
    }
}

extension Ledger {
    /// A send as a route makes it: prepared (sealed) off the actor's turn, then decided.
    func send(from token: VerifiedToken, to receiver: String, text: String, clientId: String?) async throws -> SendOutcome {
        guard let prepared = try PreparedSend(sender: token.userId, receiver: receiver, text: text, clientId: clientId, keys: keys) else {
            return Self.sessionEnded
        }
        return try await send(from: token, prepared)
    }

    /// A live session of `userId`, as an access token of it would name it.
    func session(of userId: UInt32) async throws -> VerifiedToken {
        let opened = try await login(userId: userId)
        return VerifiedToken(userId: userId, sessionId: opened.session, jti: opened.jti, kind: "access")
    }
}
