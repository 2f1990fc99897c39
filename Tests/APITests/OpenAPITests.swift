import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import API

/// openapi.json against the route table and the running server.
@Suite struct OpenAPITests {
    static let methods = ["get", "post", "put", "patch", "delete", "head", "options"]

    /// The routes API.md marks "(auth)": they must declare bearer auth and refuse a request without it.
    static let authenticated: Set<ChatRoute> = [.logout, .onlineUsers, .suggestions, .startChat, .send, .history, .conversations,
                                                .deleteAccount, .exportAccount]

    static func document() throws -> [String: Any] {
        let buffer = try #require(WebAssets.shared.data(for: .openAPI))
        return try #require(try JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any])
    }

    /// (method, path) for every operation of the document.
    static func operations(_ doc: [String: Any]) -> [(method: String, path: String, op: [String: Any])] {
        let paths = doc["paths"] as? [String: [String: Any]] ?? [:]
        return paths.keys.sorted().flatMap { path in
            methods.compactMap { m in (paths[path]?[m] as? [String: Any]).map { (m, path, $0) } }
        }
    }

    /// Follows a `$ref` inside the document.
    static func resolve(_ ref: String, in doc: [String: Any]) -> Any? {
        guard ref.hasPrefix("#/") else { return nil }
        var node: Any? = doc
        for key in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(key)] }
        return node
    }

    @Test func everyRouteIsDocumentedAndEveryOperationIsARoute() throws {
        let doc = try Self.document()
        let documented = Set(Self.operations(doc).map { "\($0.method.uppercased()) \($0.path)" })
        let routed = Set(ChatRoute.allCases.map { "\($0.method.rawValue) \($0.template)" })
        #expect(routed.subtracting(documented).isEmpty, "routes missing from openapi.json: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "operations with no route: \(documented.subtracting(routed).sorted())")
    }

    @Test func documentIsWellFormed() throws {
        let doc = try Self.document()
        let version = try #require(doc["openapi"] as? String)
        #expect(version.hasPrefix("3.1."))
        let schemes = (doc["components"] as? [String: Any])?["securitySchemes"] as? [String: [String: Any]]
        #expect(schemes?["bearerAuth"]?["type"] as? String == "http" && schemes?["bearerAuth"]?["scheme"] as? String == "bearer")

        var ids: Set<String> = []
        for (method, path, op) in Self.operations(doc) {
            let responses = op["responses"] as? [String: Any] ?? [:]
            #expect(!responses.isEmpty, "\(method) \(path) has no responses")
            let id = op["operationId"] as? String ?? ""
            #expect(!id.isEmpty && ids.insert(id).inserted, "\(method) \(path): missing or repeated operationId")
            let route = try #require(ChatRoute.allCases.first { $0.template == path && $0.method.rawValue == method.uppercased() })
            let security = (op["security"] ?? doc["security"]) as? [[String: Any]] ?? []
            let bearer = security.contains { $0["bearerAuth"] != nil }
            if Self.authenticated.contains(route) || route == .socket {
                #expect(bearer, "\(method) \(path) must declare bearer auth")
            } else {
                #expect(security.isEmpty, "\(method) \(path) is public and must say security: []")
            }
        }
        // Every $ref anywhere in the document points at something.
        func walk(_ node: Any) {
            if let object = node as? [String: Any] {
                if let ref = object["$ref"] as? String { #expect(Self.resolve(ref, in: doc) != nil, "dangling \(ref)") }
                object.values.forEach(walk)
            } else if let array = node as? [Any] {
                array.forEach(walk)
            }
        }
        walk(doc)
    }

    @Test func errorResponsesUseTheContractsErrorBody() throws {
        let doc = try Self.document()
        let error = try #require(Self.resolve("#/components/schemas/Error", in: doc) as? [String: Any])
        #expect(Set(error["required"] as? [String] ?? []) == ["detail", "code"])
        var checked = 0
        for (method, path, op) in Self.operations(doc) where path != "/healthz" {
            for (status, value) in op["responses"] as? [String: Any] ?? [:] where status.hasPrefix("4") || status.hasPrefix("5") {
                var response = value as? [String: Any] ?? [:]
                if let ref = response["$ref"] as? String { response = Self.resolve(ref, in: doc) as? [String: Any] ?? [:] }
                let schema = ((response["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"] as? [String: Any]
                #expect(schema?["$ref"] as? String == "#/components/schemas/Error", "\(method) \(path) \(status)")
                checked += 1
            }
        }
        #expect(checked > 30)
    }

    @Test func webSocketFramesAreDescribed() throws {
        let doc = try Self.document()
        let socket = try #require((doc["paths"] as? [String: [String: Any]])?["/api/chat/send/"]?["get"] as? [String: Any])
        let ws = try #require(socket["x-websocket"] as? [String: Any])
        func types(_ key: String) -> Set<String> {
            let refs = ((ws[key] as? [String: Any])?["oneOf"] as? [[String: String]] ?? []).compactMap { $0["$ref"] }
            return Set(refs.compactMap { ref in
                let schema = Self.resolve(ref, in: doc) as? [String: Any]
                let own = (schema?["properties"] as? [String: Any])?["type"] as? [String: Any]
                let inherited = (schema?["allOf"] as? [[String: Any]])?.compactMap { ($0["properties"] as? [String: Any])?["type"] as? [String: Any] }.first
                return (own ?? inherited)?["const"] as? String
            })
        }
        #expect(types("serverFrames") == ["message.ack", "message", "presence", "error", "sync.done", "pong"])
        #expect(types("clientFrames") == ["message", "sync", "ping"])
        #expect((ws["closeCodes"] as? [String: Any])?["4401"] != nil)
    }

    /// Calls every documented operation on a live test server, with the document's example body
    /// and real ids: each must be routed, and answer a status (and media type) it documents.
    /// The account-deletion example holds the password of the account calling it, so it really
    /// deletes that account: it is called last, and must have answered 200 with the session over.
    @Test func everyDocumentedOperationIsServedAsDocumented() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.router) { client in
            let doc = try Self.document()
            let deletion = try #require((doc["paths"] as? [String: [String: Any]])?[ChatRoute.deleteAccount.template]?["post"] as? [String: Any])
            let deletionExample = ((deletion["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any]
            let password = try #require((deletionExample?["example"] as? [String: Any])?["password"] as? String)
            let me = try await client.account("tess", password: password)
            _ = try await client.account("uma")
            let start = try await client.post("/api/chat/start/", ["receiver_id": "uma"], token: me.access)
            let conversation = try #require(object(start)["conversation_id"] as? String)
            let isDeletion = { (op: (method: String, path: String, op: [String: Any])) in
                op.path == ChatRoute.deleteAccount.template && op.method.uppercased() == ChatRoute.deleteAccount.method.rawValue
            }
            let operations = Self.operations(doc).filter { !isDeletion($0) } + Self.operations(doc).filter(isDeletion)
            var answered: [String: UInt] = [:]
            for (method, template, op) in operations {
                let path = template.replacingOccurrences(of: "{user_id}", with: String(me.id))
                    .replacingOccurrences(of: "{conversation_id}", with: conversation)
                let content = ((op["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any]
                var headers: HTTPFields = [.authorization: "Bearer \(me.access)"]
                var body: ByteBuffer?
                if let example = content?["example"] {
                    headers[.contentType] = "application/json"
                    body = ByteBuffer(data: try JSONSerialization.data(withJSONObject: example))
                }
                let response = try await client.execute(uri: path, method: .init(method.uppercased())!, headers: headers, body: body)
                answered["\(method.uppercased()) \(template)"] = UInt(response.status.code)
                let status = String(response.status.code)
                let responses = op["responses"] as? [String: Any] ?? [:]
                #expect(responses[status] != nil, "\(method) \(path) answered \(status), documented: \(responses.keys.sorted())")
                if response.status.code == 404 || response.status.code == 405 {
                    #expect(object(response)["code"] as? String != "not_found" && object(response)["code"] as? String != "method_not_allowed",
                            "\(method) \(path) is not routed")
                }
                if response.status == .ok, let media = ((responses["200"] as? [String: Any])?["content"] as? [String: Any])?.keys.first {
                    let served = response.headers[.contentType] ?? ""
                    #expect(served.hasPrefix(media.split(separator: ";")[0]), "\(method) \(path): \(served) is not \(media)")
                }
                if Self.authenticated.contains(where: { $0.template == template && $0.method.rawValue == method.uppercased() }) {
                    let anonymous = try await client.execute(uri: path, method: .init(method.uppercased())!, headers: [.contentType: "application/json"],
                                                             body: body)
                    #expect(anonymous.status == .unauthorized, "\(method) \(path) served without a token")
                }
            }
            // The examples of the account routes did what they say: the export was served, and
            // the deletion deleted tess (her token and her password are refused from now on).
            #expect(answered["GET \(ChatRoute.exportAccount.template)"] == 200)
            #expect(answered["POST \(ChatRoute.deleteAccount.template)"] == 200)
            let after = try await client.get("/api/conversations/", token: me.access)
            #expect(after.status == .unauthorized && object(after)["code"] as? String == "token_not_valid")
            let login = try await client.post("/api/login/", ["username": "tess", "password": password])
            #expect(login.status == .unauthorized && object(login)["code"] as? String == "no_active_account")
        }
        await service.shutdown()
    }
}
