import Foundation
import Hummingbird
import Testing
@testable import API

/// postman/: every request names a route that exists, the whole flow is there, and the
/// scripts keep the tokens in variables.
@Suite struct PostmanTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("postman")

    static func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The requests in order, folders flattened.
    static func requests(_ node: [String: Any]) -> [[String: Any]] {
        (node["item"] as? [[String: Any]] ?? []).flatMap { item in
            item["request"] != nil ? [item] : requests(item)
        }
    }

    /// The lines of an item's script for `listen` ("test" or "prerequest").
    static func script(_ item: [String: Any], _ listen: String) -> String {
        let events = item["event"] as? [[String: Any]] ?? []
        let event = events.first { $0["listen"] as? String == listen }
        return ((event?["script"] as? [String: Any])?["exec"] as? [String] ?? []).joined(separator: "\n")
    }

    /// The route a request names: `{{baseUrl}}` and the query dropped, `{{var}}` segments filled in.
    static func route(of item: [String: Any]) -> ChatRoute? {
        let request = item["request"] as? [String: Any] ?? [:]
        let url = request["url"]
        var raw = (url as? String) ?? ((url as? [String: Any])?["raw"] as? String) ?? ""
        guard raw.hasPrefix("{{baseUrl}}") else { return nil }
        raw.removeFirst("{{baseUrl}}".count)
        let path = String(raw.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        let parts = ChatRoute.split(path).map { $0.hasPrefix("{{") && $0.hasSuffix("}}") ? "1" : $0 }
        guard let name = request["method"] as? String, let method = HTTPRequest.Method(name) else { return nil }
        if case let .found(route, _) = ChatRoute.resolve(method, parts) { return route }
        return nil
    }

    @Test func everyRequestNamesARouteThatExists() throws {
        let items = Self.requests(try Self.load("chat-es.postman_collection.json"))
        #expect(items.count >= 10)
        for item in items {
            #expect(Self.route(of: item) != nil, "\(item["name"] ?? "?") names no route")
            // The structured URL must say the same as the raw one.
            let url = (item["request"] as? [String: Any])?["url"] as? [String: Any]
            let raw = (url?["raw"] as? String ?? "").split(separator: "?")[0]
            let joined = "{{baseUrl}}/" + (url?["path"] as? [String] ?? []).joined(separator: "/")
            #expect(String(raw) == joined, "\(item["name"] ?? "?"): path parts disagree with raw")
        }
    }

    @Test func theWholeFlowIsThereInOrder() throws {
        let routes = Self.requests(try Self.load("chat-es.postman_collection.json")).compactMap(Self.route(of:))
        let flow: [ChatRoute] = [.register, .login, .refresh, .onlineUsers, .suggestions, .startChat, .send, .history, .logout]
        var rest = routes[...]
        for step in flow {
            guard let at = rest.firstIndex(of: step) else {
                Issue.record("\(step.template) missing or out of order in \(routes.map(\.template))")
                return
            }
            rest = rest[(at + 1)...]
        }
    }

    @Test func scriptsKeepTokensInVariables() throws {
        let collection = try Self.load("chat-es.postman_collection.json")
        let items = Self.requests(collection)
        func item(_ route: ChatRoute) throws -> [String: Any] { try #require(items.first { Self.route(of: $0) == route }) }
        for route in [ChatRoute.login, .refresh] {
            let test = Self.script(try item(route), "test")
            // Refresh tokens rotate: both tokens are stored after login and after every refresh.
            #expect(test.contains("pm.environment.set(\"access\", body.access)"), "\(route.template)")
            #expect(test.contains("pm.environment.set(\"refresh\", body.refresh)"), "\(route.template)")
        }
        #expect(Self.script(try item(.startChat), "test").contains("pm.environment.set(\"conversationId\""))
        // The bearer token of authenticated requests is the stored access token.
        let auth = collection["auth"] as? [String: Any]
        let bearer = (auth?["bearer"] as? [[String: Any]])?.first { $0["key"] as? String == "token" }
        #expect(auth?["type"] as? String == "bearer" && bearer?["value"] as? String == "{{access}}")
        // Every request checks its status.
        for entry in items { #expect(Self.script(entry, "test").contains("pm.response.code"), "\(entry["name"] ?? "?")") }

        // Every variable the collection uses is in the environment file.
        let environment = try Self.load("chat-es.postman_environment.json")
        let keys = Set((environment["values"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String })
        let text = String(decoding: try JSONSerialization.data(withJSONObject: collection), as: UTF8.self)
        let used = try NSRegularExpression(pattern: #"\{\{([A-Za-z][A-Za-z0-9_]*)\}\}"#)
            .matches(in: text, range: NSRange(text.startIndex..., in: text))
            .compactMap { Range($0.range(at: 1), in: text).map { String(text[$0]) } }
        #expect(Set(used).subtracting(keys).isEmpty, "not in the environment: \(Set(used).subtracting(keys))")
    }
}
