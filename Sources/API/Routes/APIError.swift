import Hummingbird
import Projections

/// An error answer of the contract: `{"detail", "code"[, "fields"]}` with its status.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var detail: String
    public var fields: [String: [String]]?
    public var retryAfter: Int?
    /// The methods a 405's path does answer (its `Allow` header, RFC 9110).
    public var allow: [String]?

    public init(_ status: HTTPResponse.Status, _ code: String, _ detail: String,
                fields: [String: [String]]? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.detail = detail
        self.fields = fields
        self.retryAfter = retryAfter
    }

    static func invalid(_ fields: [String: [String]]) -> APIError {
        APIError(.badRequest, "invalid", "Invalid input.", fields: fields)
    }

    static func invalid(_ field: String, _ message: String) -> APIError {
        invalid([field: [message]])
    }

    static let notAuthenticated = APIError(.unauthorized, "not_authenticated", "Authentication credentials were not provided.")
    static let tokenNotValid = APIError(.unauthorized, "token_not_valid", "Given token not valid for any token type")
    static let notFound = APIError(.notFound, "not_found", "Not found.")
    static let methodNotAllowed = APIError(.methodNotAllowed, "method_not_allowed", "Method not allowed.")

    static func methodNotAllowed(allowing methods: [String]) -> APIError {
        var error = methodNotAllowed
        error.allow = methods
        return error
    }
    static let forbidden = APIError(.forbidden, "permission_denied", "You do not have permission to perform this action.")
    static let storeUnavailable = APIError(.serviceUnavailable, "storage_unavailable",
                                           "The event log cannot store anything right now.", retryAfter: 1)
    static let unavailable = APIError(.serviceUnavailable, "replaying", "The server is replaying its log; try again shortly.", retryAfter: 1)

    var json: String {
        var out = "{\"detail\":" + jsonQuoted(detail) + ",\"code\":" + jsonQuoted(code)
        if let fields {
            out += ",\"fields\":{"
            out += fields.keys.sorted().map { key in
                jsonQuoted(key) + ":[" + fields[key]!.map(jsonQuoted).joined(separator: ",") + "]"
            }.joined(separator: ",")
            out += "}"
        }
        return out + "}"
    }

    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if let allow { headers[.allow] = allow.joined(separator: ", ") }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}

extension Response {
    /// A JSON answer from already-rendered JSON text.
    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
