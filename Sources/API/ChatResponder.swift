import EventLog
import Foundation
import Hummingbird
import Logging

/// Routes every request of the contract: trailing slash optional, 405 for a known path with
/// the wrong method, 404 otherwise, and errors always in the contract's JSON shape.
public struct ChatResponder: HTTPResponder {
    public typealias Context = ChatRequestContext
    let service: ChatService

    public init(service: ChatService) { self.service = service }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        var route = "unknown"
        let response: Response
        do {
            response = try await dispatch(request, context: context, route: &route)
        } catch let error as APIError {
            response = error.response
        } catch let error as EventLogError {
            service.logger.error("\(request.method) \(route): log unavailable: \(error)")
            response = APIError(.serviceUnavailable, "storage_unavailable", "The event log cannot store anything right now.").response
        } catch {
            service.logger.error("\(request.method) \(route) failed: \(error)", metadata: ["request_id": .string(context.id)])
            response = APIError(.internalServerError, "server_error", "A server error occurred.").response
        }
        let took = DispatchTime.now().uptimeNanoseconds - started
        service.metrics.request(route: route, status: response.status.code, nanoseconds: took)
        service.logger.debug("\(request.method) \(request.uri.path) \(response.status.code) \(took / 1000) µs",
                             metadata: ["request_id": .string(context.id)])
        return response
    }

    private func dispatch(_ request: Request, context: Context, route: inout String) async throws -> Response {
        var path = request.uri.path
        if path.count > 1, path.hasSuffix("/") { path.removeLast() }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        let method = request.method
        let handlers = RouteHandlers(service: service, request: request, context: context)

        func only(_ m: HTTPRequest.Method, _ name: String, _ body: () async throws -> Response) async throws -> Response {
            route = name
            guard method == m else {
                if name == "/api/chat/send/", method == .get { throw APIError.notAuthenticated }
                throw APIError.methodNotAllowed
            }
            guard service.ledger != nil || name == "/healthz" || name == "/metrics" || name == "/" else {
                throw APIError.unavailable
            }
            return try await body()
        }

        switch parts {
        case ["healthz"]: return try await only(.get, "/healthz") { handlers.healthz() }
        case ["metrics"]: return try await only(.get, "/metrics") { await handlers.metrics() }
        case ["api", "register"]: return try await only(.post, "/api/register/") { try await handlers.register() }
        case ["api", "login"]: return try await only(.post, "/api/login/") { try await handlers.login() }
        case ["api", "token", "refresh"]: return try await only(.post, "/api/token/refresh/") { try await handlers.refresh() }
        case ["api", "logout"]: return try await only(.post, "/api/logout/") { try await handlers.logout() }
        case ["api", "online-users"]: return try await only(.get, "/api/online-users/") { try await handlers.onlineUsers() }
        case ["api", "conversations"]: return try await only(.get, "/api/conversations/") { try await handlers.conversations() }
        case ["api", "chat", "start"]: return try await only(.post, "/api/chat/start/") { try await handlers.startChat() }
        case ["api", "chat", "send"]: return try await only(.post, "/api/chat/send/") { try await handlers.send() }
        default:
            if parts.count == 3, parts[0] == "api", parts[1] == "suggested-friends" {
                return try await only(.get, "/api/suggested-friends/{id}") { try await handlers.suggestions(parts[2]) }
            }
            if parts.count == 4, parts[0] == "api", parts[1] == "chat", parts[3] == "messages" {
                return try await only(.get, "/api/chat/{id}/messages/") { try await handlers.history(parts[2]) }
            }
            route = "unknown"
            throw APIError.notFound
        }
    }
}
