import Foundation
import Hummingbird
import Testing
@testable import API

/// postman/: every request names a route that exists, the whole flow is there, no request
/// leans on a session that has ended, and the scripts keep the tokens in variables.
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

    /// The statuses an item's test script accepts: its `pm.expect(pm.response.code).to.be.oneOf([…])`.
    static func expectedCodes(_ item: [String: Any]) -> [Int] {
        let test = script(item, "test")
        guard let regex = try? NSRegularExpression(pattern: #"pm\.response\.code\)\.to\.be\.oneOf\(\[([0-9,\s]*)\]\)"#),
              let match = regex.firstMatch(in: test, range: NSRange(test.startIndex..., in: test)),
              let range = Range(match.range(at: 1), in: test) else { return [] }
        return test[range].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// True when the request is sent with the collection's bearer token (`{{access}}`), i.e. it
    /// does not say `auth: noauth` for itself.
    static func usesSession(_ item: [String: Any]) -> Bool {
        ((item["request"] as? [String: Any])?["auth"] as? [String: Any])?["type"] as? String != "noauth"
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
        // The account is deleted last, from a second session: logout ended the first one.
        let flow: [ChatRoute] = [.register, .login, .refresh, .onlineUsers, .suggestions, .startChat, .send, .history, .exportAccount,
                                 .logout, .login, .deleteAccount]
        var rest = routes[...]
        for step in flow {
            guard let at = rest.firstIndex(of: step) else {
                Issue.record("\(step.template) missing or out of order in \(routes.map(\.template))")
                return
            }
            rest = rest[(at + 1)...]
        }
    }

    /// Logout and account deletion end the session: until a login opens a new one, no request
    /// may use `{{access}}` (a step that shows a dead token is refused names its token itself,
    /// with `auth: noauth`). A step that expects the logout or deletion to fail ends nothing.
    /// The deletion that succeeds must be there (nothing after it can log in again).
    @Test func noRequestUsesASessionThatEnded() throws {
        let items = Self.requests(try Self.load("chat-es.postman_collection.json"))
        var live = false
        var deleted = false
        for item in items {
            let name = item["name"] as? String ?? "?"
            let route = Self.route(of: item)
            let codes = Self.expectedCodes(item)
            #expect(!codes.isEmpty, "\(name): no oneOf([...]) status check")
            if Self.usesSession(item) {
                #expect(live, "\(name) uses {{access}}, but no session is open at that point")
                #expect(route.map { OpenAPITests.authenticated.contains($0) } == true, "\(name) sends a token to a public route")
            }
            let succeeds = !codes.isEmpty && codes.allSatisfy { (200..<300).contains($0) }
            switch route {
            case .login? where succeeds: live = true
            case .logout? where succeeds: live = false
            case .deleteAccount? where succeeds:
                live = false
                deleted = true
            default: break
            }
        }
        #expect(deleted, "no step deletes the account with a 200")
    }

    @Test func scriptsKeepTokensInVariables() throws {
        let collection = try Self.load("chat-es.postman_collection.json")
        let items = Self.requests(collection)
        func item(_ route: ChatRoute) throws -> [String: Any] { try #require(items.first { Self.route(of: $0) == route }) }
        // Refresh tokens rotate: both tokens are stored after every login and every refresh that succeeds.
        let opening = items.filter { [ChatRoute.login, .refresh].contains(Self.route(of: $0)) && Self.expectedCodes($0) == [200] }
        #expect(opening.count >= 3, "login, refresh and the second login")
        for entry in opening {
            let test = Self.script(entry, "test")
            #expect(test.contains("pm.environment.set(\"access\", body.access)"), "\(entry["name"] ?? "?")")
            #expect(test.contains("pm.environment.set(\"refresh\", body.refresh)"), "\(entry["name"] ?? "?")")
        }
        // Logout and deletion forget the session's tokens.
        for entry in items where [ChatRoute.logout, .deleteAccount].contains(Self.route(of: entry)) && Self.expectedCodes(entry) == [200] {
            let test = Self.script(entry, "test")
            #expect(test.contains("pm.environment.unset(\"access\")") && test.contains("pm.environment.unset(\"refresh\")"),
                    "\(entry["name"] ?? "?")")
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
