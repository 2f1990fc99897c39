import Foundation
import Hummingbird
import Projections

/// The REST endpoints of API.md, one method each.
struct RouteHandlers {
    let service: ChatService
    let request: Request
    let context: ChatRequestContext

    var ledger: Ledger {
        get throws {
            guard let ledger = service.ledger else { throw APIError.unavailable }
            return ledger
        }
    }

    var nowSeconds: Int64 { Int64(Date().timeIntervalSince1970) }

    func healthz() -> Response {
        if let failure = service.ledger?.log.failureReason {
            return Response.json("{\"status\":\"storage_failed\",\"detail\":\(jsonQuoted(failure)),\"log_position\":\(service.logPosition)}", status: .serviceUnavailable)
        }
        if !service.storeAvailable {
            return Response.json("{\"status\":\"storage_unavailable\",\"log_position\":\(service.logPosition)}",
                                 status: .serviceUnavailable)
        }
        guard service.ledger != nil else {
            let start = service.startReport
            return Response.json("{\"status\":\"replaying\",\"log_position\":\(start.head),\"replayed\":\(start.replayed)}",
                                 status: .serviceUnavailable)
        }
        return Response.json("{\"status\":\"ok\",\"log_position\":\(service.logPosition)}")
    }

    func metrics() async -> Response {
        var users = 0
        if let ledger = service.ledger { users = await ledger.userCount() }
        let text = MetricsExport.text(logPosition: service.logPosition, openSockets: service.hub.openSockets,
                                      users: users, durable: service.ledger?.log.durableSeq ?? 0,
                                      syncs: service.ledger?.log.syncStatistics ?? (0, 0),
                                      commits: service.ledger?.log.mirrorStatistics ?? (0, 0), start: service.startReport)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: accounts

    func register() async throws -> Response {
        let fields = try await RequestBody.fields(of: request)
        var errors: [String: [String]] = [:]
        let username = Validation.requiredString(fields, "username", into: &errors)
        let password = Validation.requiredString(fields, "password", into: &errors)
        if let username, let problem = Validation.usernameProblem(username) { errors["username"] = [problem] }
        if let password {
            let problems = Validation.passwordProblems(password, username: username)
            if !problems.isEmpty { errors["password"] = problems }
        }
        guard errors.isEmpty, let username, let password else { throw APIError.invalid(errors) }
        let ledger = try ledger
        if await ledger.isNameTaken(username) {
            throw APIError(.conflict, "username_taken", "A user with that username already exists.")
        }
        let hash = try await service.hasher.hash(password)
        let (id, seq) = try await ledger.register(username: username, passwordHash: hash)
        try await service.durable(seq)
        return Response.json("{\"id\":\(id),\"username\":\(jsonQuoted(username))}", status: .created)
    }

    func login() async throws -> Response {
        let fields = try await RequestBody.fields(of: request)
        var errors: [String: [String]] = [:]
        let username = Validation.requiredString(fields, "username", into: &errors)
        let password = Validation.requiredString(fields, "password", into: &errors)
        guard errors.isEmpty, let username, let password else { throw APIError.invalid(errors) }
        let userKey = "u:" + username.lowercased()
        let addressKey = "a:" + context.remoteAddress
        if let wait = service.userFailures.wait(userKey) ?? service.addressFailures.wait(addressKey) {
            throw APIError(.tooManyRequests, "throttled", "Too many failed logins; try again later.",
                           retryAfter: Int(wait.rounded(.up)))
        }
        let ledger = try ledger
        let found = await ledger.credentialsCatchingUp(of: username)
        var ok = false
        if let found {
            ok = try await service.hasher.verify(password, against: found.hash)
        } else {
            try await service.hasher.burn(password)
        }
        guard ok, let found else {
            _ = service.userFailures.take(userKey)
            _ = service.addressFailures.take(addressKey)
            throw APIError(.unauthorized, "no_active_account", "No active account found with the given credentials")
        }
        let session = try await ledger.login(userId: found.id)
        try await service.durable(session.seq)
        if let presence = session.presence { service.hub.deliver(presence) }
        let pair = try await service.tokens.pair(userId: found.id, session: session.session, refreshJti: session.jti, now: nowSeconds)
        return Response.json("{\"refresh\":\(jsonQuoted(pair.refresh)),\"access\":\(jsonQuoted(pair.access)),\"user\":{\"id\":\(found.id),\"username\":\(jsonQuoted(found.name))}}")
    }

    func refresh() async throws -> Response {
        let fields = try await RequestBody.fields(of: request)
        var errors: [String: [String]] = [:]
        guard let raw = Validation.requiredString(fields, "refresh", into: &errors) else {
            if fields["refresh"] == nil { throw APIError.invalid(errors) }
            throw APIError.tokenNotValid
        }
        guard let token = await service.tokens.verify(raw, kind: "refresh") else { throw APIError.tokenNotValid }
        switch try await ledger.refresh(token) {
        case .invalid:
            throw APIError.tokenNotValid
        case let .reuseDetected(seq, presence):
            try await service.durable(seq)
            if let presence { service.hub.deliver(presence) }
            throw APIError.tokenNotValid
        case let .rotated(newJti, seq):
            try await service.durable(seq)
            let pair = try await service.tokens.pair(userId: token.userId, session: token.sessionId, refreshJti: newJti, now: nowSeconds)
            return Response.json("{\"access\":\(jsonQuoted(pair.access)),\"refresh\":\(jsonQuoted(pair.refresh))}")
        }
    }

    func logout() async throws -> Response {
        let user = try await authenticate()
        let fields = try await RequestBody.fields(of: request)
        var errors: [String: [String]] = [:]
        guard let raw = Validation.requiredString(fields, "refresh", into: &errors) else {
            if fields["refresh"] == nil { throw APIError.invalid(errors) }
            throw APIError.tokenNotValid
        }
        guard let token = await service.tokens.verify(raw, kind: "refresh"),
              let done = try await ledger.logout(userId: user.userId, refresh: token) else {
            throw APIError.tokenNotValid
        }
        try await service.durable(done.seq)
        if let presence = done.presence { service.hub.deliver(presence) }
        return Response.json("{\"detail\":\"Successfully logged out.\"}")
    }

    /// The caller of an authenticated endpoint: a valid access token of an open session.
    func authenticate() async throws -> VerifiedToken {
        guard let header = request.headers[.authorization] else { throw APIError.notAuthenticated }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] == "Bearer" else { throw APIError.tokenNotValid }
        guard let token = await service.tokens.verify(String(parts[1]), kind: "access"),
              try await ledger.isLiveCatchingUp(token) else { throw APIError.tokenNotValid }
        return token
    }

    // MARK: reads

    /// A DRF-style limit: absent or invalid means the default; capped at `max`.
    private func pageNumber(_ name: String, default value: Int, max: Int) -> Int {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init) else { return value }
        switch Validation.queryNumber(text) {
        case let .success(n?): return n == 0 && name == "limit" ? value : Int(min(n, UInt64(max)))
        default: return value
        }
    }

    private func pageURL(limit: Int, offset: Int?) -> String {
        let host = request.head.authority ?? "127.0.0.1"
        var url = "http://\(host)\(request.uri.path)?limit=\(limit)"
        if let offset { url += "&offset=\(offset)" }
        return jsonQuoted(url)
    }

    func onlineUsers() async throws -> Response {
        _ = try await authenticate()
        let limit = pageNumber("limit", default: 100, max: 1000)
        let offset = pageNumber("offset", default: 0, max: Int(Int32.max))
        let page = try await ledger.onlineUsers(limit: limit, offset: offset)
        let next = offset + limit < page.count ? pageURL(limit: limit, offset: offset + limit) : "null"
        let previous = offset <= 0 ? "null" : pageURL(limit: limit, offset: offset - limit > 0 ? offset - limit : nil)
        return Response.json("{\"count\":\(page.count),\"next\":\(next),\"previous\":\(previous),\"results\":[\(page.entries.joined(separator: ","))]}")
    }

    func suggestions(_ idText: String) async throws -> Response {
        let me = try await authenticate()
        guard !idText.isEmpty, idText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let id = UInt32(idText),
              try await ledger.userExists(id) else {
            throw APIError(.notFound, "user_not_found", "User not found.")
        }
        guard id == me.userId else { throw APIError.forbidden }
        let limit = pageNumber("limit", default: 5, max: 50)
        let results = try await ledger.suggestions(for: id, limit: limit)
        return Response.json("{\"user_id\":\(id),\"results\":[\(results.joined(separator: ","))]}")
    }

    func conversations() async throws -> Response {
        let me = try await authenticate()
        let list = try await ledger.conversations(of: me.userId)
        return Response.json("[" + list.joined(separator: ",") + "]")
    }

    func history(_ idText: String) async throws -> Response {
        let me = try await authenticate()
        guard let number = parseConversationId(idText) else {
            throw APIError(.notFound, "conversation_not_found", "Conversation not found.")
        }
        let query = request.uri.queryParameters
        let after = try Validation.queryNumber(query["after"].map(String.init)).get() ?? 0
        let limitValue = try Validation.queryNumber(query["limit"].map(String.init)).get()
        if limitValue == 0 { throw APIError.invalid("limit", "Ensure this value is greater than or equal to 1.") }
        let limit = Int(min(limitValue ?? 50, 500))
        switch try await ledger.history(of: number, for: me.userId, after: after, limit: limit) {
        case .notFound: throw APIError(.notFound, "conversation_not_found", "Conversation not found.")
        case .forbidden: throw APIError.forbidden
        case let .page(messages, more):
            let next = more ? messages.last.map { String($0.id) } ?? "null" : "null"
            return Response.json("{\"results\":[\(messages.map(\.json).joined(separator: ","))],\"next_after\":\(next)}")
        }
    }

    // MARK: chats

    func startChat() async throws -> Response {
        let me = try await authenticate()
        let fields = try await RequestBody.fields(of: request)
        let receiver: Ledger.Receiver
        switch fields["receiver_id"] {
        case nil:
            throw APIError.invalid("receiver_id", "This field is required.")
        case let .string(s)?:
            guard !s.isEmpty else { throw APIError.invalid("receiver_id", "This field may not be blank.") }
            let digits = s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
            receiver = digits ? .nameOrId(s, UInt32(s)) : .name(s)
        case let .number(text)?:
            guard let n = Int64(text) else { throw APIError.invalid("receiver_id", "A valid integer or username is required.") }
            guard n > 0, n <= Int64(UInt32.max) else { throw APIError(.notFound, "user_not_found", "Receiver not found.") }
            receiver = .id(UInt32(n))
        default:
            throw APIError.invalid("receiver_id", "A valid integer or username is required.")
        }
        let started = try await ledger.startChat(from: me, with: receiver)
        try await service.durable(started.seq)
        let participants = started.participants.map { "{\"id\":\($0.0),\"username\":\(jsonQuoted($0.1))}" }.joined(separator: ",")
        return Response.json(
            "{\"conversation_id\":\(jsonQuoted(publicConversationId(started.conversation))),\"participants\":[\(participants)],\"created\":\(started.created)}",
            status: started.created ? .created : .ok)
    }

    func send() async throws -> Response {
        let me = try await authenticate()
        let fields = try await RequestBody.fields(of: request)
        let parsed: (receiver: String, text: String, clientId: String?)
        switch Validation.sendFields(fields) {
        case let .failure(error): throw APIError(.badRequest, error.code, error.detail)
        case let .success(p): parsed = p
        }
        guard let deliveries = service.deliveries else { throw APIError.unavailable }
        guard let prepared = try PreparedSend(sender: me.userId, receiver: parsed.receiver, text: parsed.text,
                                              clientId: parsed.clientId, keys: try ledger.keys) else {
            throw APIError.tokenNotValid
        }
        let outcome = try await ledger.send(from: me, prepared) {
            message, deliverTo in
            deliveries.after(message.id, Delivery(
                fanout: Fanout(users: deliverTo, exceptSocket: nil, frame: message.messageWireFrame), storesMessage: true))
        }
        switch outcome {
        case .rejected("session_ended", _):
            throw APIError.tokenNotValid
        case let .rejected(code, detail):
            let status: HTTPResponse.Status = code == "unknown_receiver" ? .notFound : code == "chat_not_started" ? .conflict : .badRequest
            throw APIError(status, code, detail)
        case let .duplicate(message):
            try await service.durable(message.id)
            return Response.json(message.json)
        case let .stored(message):
            try await service.durable(message.id)
            return Response.json(message.json, status: .created)
        }
    }
}
