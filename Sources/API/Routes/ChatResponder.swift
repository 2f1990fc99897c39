import EventLog
import Foundation
import Hummingbird
import Logging

/// Routes every request of the contract: trailing slash optional, 405 for a known path with
/// the wrong method, 404 otherwise, and errors always in the contract's JSON shape.
public struct ChatResponder: HTTPResponder {
    public typealias Context = ChatRequestContext
    let service: ChatService
    let assets: WebAssets

    /// Loads the web client and OpenAPI files now, so a missing resource bundle stops start-up.
    public init(service: ChatService) {
        self.service = service
        assets = WebAssets.shared
    }

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
        let handlers = RouteHandlers(service: service, request: request, context: context)
        let found: ChatRoute
        let captured: [String]
        switch ChatRoute.resolve(request.method, ChatRoute.split(request.uri.path)) {
        case .unknown:
            throw APIError.notFound
        case let .wrongMethod(known, allowed):
            route = known.template
            throw APIError.methodNotAllowed(allowing: allowed)
        case let .found(match, segments):
            (found, captured) = (match, segments)
        }
        route = found.template
        guard service.ledger != nil || !found.needsLedger else { throw APIError.unavailable }
        // Reads are served from memory; anything that would append waits for the database.
        if found.needsLedger && request.method != .get && !service.storeAvailable { throw APIError.storeUnavailable }

        switch found {
        case .healthz: return handlers.healthz()
        case .metrics: return await handlers.metrics()
        case .register: return try await handlers.register()
        case .login: return try await handlers.login()
        case .refresh: return try await handlers.refresh()
        case .logout: return try await handlers.logout()
        case .onlineUsers: return try await handlers.onlineUsers()
        case .suggestions: return try await handlers.suggestions(captured[0])
        case .conversations: return try await handlers.conversations()
        case .startChat: return try await handlers.startChat()
        case .send: return try await handlers.send()
        // A socket upgrade never reaches the responder; a plain GET carries no usable token.
        case .socket: throw APIError.notAuthenticated
        case .history: return try await handlers.history(captured[0])
        case .deleteAccount: return try await handlers.deleteAccount()
        case .exportAccount: return try await handlers.exportAccount()
        case .openAPI, .index, .appScript, .apiScript, .socketScript, .styles, .icon:
            return assets.response(for: found, request: request)
        }
    }
}
