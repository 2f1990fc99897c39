import Hummingbird

/// Every route the server answers, as data: the dispatch matches requests against this table,
/// and tests compare it with the OpenAPI document and the Postman collection.
public enum ChatRoute: String, CaseIterable, Sendable {
    case healthz, metrics
    case register, login, refresh, logout
    case onlineUsers, suggestions, conversations
    case startChat, send, socket, history
    case deleteAccount, exportAccount
    case openAPI, index, appScript, apiScript, socketScript, styles, icon

    /// The route's method.
    public var method: HTTPRequest.Method {
        switch self {
        case .register, .login, .refresh, .logout, .startChat, .send, .deleteAccount: .post
        default: .get
        }
    }

    /// The path as API.md writes it; `{name}` stands for one path segment. This text is also the
    /// route's label in metrics and the path key in openapi.json.
    public var template: String {
        switch self {
        case .healthz: "/healthz"
        case .metrics: "/metrics"
        case .register: "/api/register/"
        case .login: "/api/login/"
        case .refresh: "/api/token/refresh/"
        case .logout: "/api/logout/"
        case .onlineUsers: "/api/online-users/"
        case .suggestions: "/api/suggested-friends/{user_id}"
        case .conversations: "/api/conversations/"
        case .startChat: "/api/chat/start/"
        case .send, .socket: "/api/chat/send/"
        case .history: "/api/chat/{conversation_id}/messages/"
        case .deleteAccount: "/api/account/delete/"
        case .exportAccount: "/api/account/export/"
        case .openAPI: "/openapi.json"
        case .index: "/"
        case .appScript: "/web/app.js"
        case .apiScript: "/web/api.js"
        case .socketScript: "/web/socket.js"
        case .styles: "/web/app.css"
        case .icon: "/web/icon.svg"
        }
    }

    /// False for routes that can answer before the log is replayed (health, metrics, the
    /// static files, and the socket route whose plain GET is always a 401).
    var needsLedger: Bool {
        switch self {
        case .healthz, .metrics, .socket, .openAPI, .index, .appScript, .apiScript, .socketScript, .styles, .icon: false
        default: true
        }
    }

    /// The template's segments, as `dispatch` splits a request path (trailing slash dropped).
    private var segments: [String] { Self.split(template) }

    /// Splits a path the way routes are matched: one trailing slash is optional.
    static func split(_ path: String) -> [String] {
        var path = path
        if path.count > 1, path.hasSuffix("/") { path.removeLast() }
        return path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
    }

    /// The `{name}` segments' values if `parts` fits this route's path, else nil.
    func match(_ parts: [String]) -> [String]? {
        let mine = Self.table[self] ?? segments
        guard mine.count == parts.count else { return nil }
        var captured: [String] = []
        for (pattern, part) in zip(mine, parts) {
            if pattern.hasPrefix("{") { captured.append(part) } else if pattern != part { return nil }
        }
        return captured
    }

    /// Segments split once, not per request.
    private static let table: [ChatRoute: [String]] = Dictionary(uniqueKeysWithValues: allCases.map { ($0, $0.segments) })

    /// The route for a request: `.found` with the captured segments, `.wrongMethod` for a known
    /// path (its first route, for the metrics label, and the methods the path answers), or
    /// `.unknown`.
    static func resolve(_ method: HTTPRequest.Method, _ parts: [String]) -> Resolution {
        var pathRoutes: [ChatRoute] = []
        for route in allCases {
            guard let captured = route.match(parts) else { continue }
            if route.method == method { return .found(route, captured) }
            pathRoutes.append(route)
        }
        guard let first = pathRoutes.first else { return .unknown }
        var allowed: [String] = []
        for route in pathRoutes where !allowed.contains(route.method.rawValue) { allowed.append(route.method.rawValue) }
        return .wrongMethod(first, allowed: allowed)
    }

    /// What `resolve` found.
    enum Resolution {
        case found(ChatRoute, [String])
        case wrongMethod(ChatRoute, allowed: [String])
        case unknown
    }
}
