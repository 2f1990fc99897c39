import Projections

/// The contract's rules for usernames, passwords, query numbers and message frames.
enum Validation {
    /// Django's username rule: 1–150 letters, digits and `@.+-_` (Unicode letters and digits).
    static func usernameProblem(_ name: String) -> String? {
        let scalars = name.unicodeScalars
        if scalars.isEmpty { return "This field may not be blank." }
        if scalars.count > 150 { return "Ensure this field has no more than 150 characters." }
        for s in scalars where !isUsernameScalar(s) {
            return "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
        }
        return nil
    }

    private static func isUsernameScalar(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "@", ".", "+", "-", "_": return true
        default: break
        }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    static func passwordProblems(_ password: String, username: String?) -> [String] {
        var out: [String] = []
        let count = password.unicodeScalars.count
        if count < 8 { out.append("This password is too short. It must contain at least 8 characters.") }
        if count > 1024 { out.append("Ensure this field has no more than 1024 characters.") }
        if !password.isEmpty, password.unicodeScalars.allSatisfy({ $0.properties.generalCategory == .decimalNumber }) {
            out.append("This password is entirely numeric.")
        }
        if let username, password.lowercased() == username.lowercased() {
            out.append("The password is too similar to the username.")
        }
        return out
    }

    /// A string field that must be present; the error names the field.
    static func requiredString(_ fields: [String: JSONValue], _ name: String, into errors: inout [String: [String]]) -> String? {
        guard let value = fields[name] else {
            errors[name] = ["This field is required."]
            return nil
        }
        guard case let .string(s) = value else {
            errors[name] = ["Not a valid string."]
            return nil
        }
        return s
    }

    /// A query number: nil when absent, `.max` for an all-digit number too big to hold,
    /// or a failure for anything that is not a non-negative integer.
    static func queryNumber(_ text: String?) -> Result<UInt64?, APIError> {
        guard let text else { return .success(nil) }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return .failure(APIError.invalid("query", "A non-negative integer is required."))
        }
        return .success(UInt64(text) ?? .max)
    }

    /// At most `limit` Unicode scalars (how Python counts characters). A scalar takes at least
    /// one UTF-8 byte, and the byte count is known without a walk, so most texts need none.
    static func fitsInScalars(_ text: String, _ limit: Int) -> Bool {
        text.utf8.count <= limit || text.unicodeScalars.count <= limit
    }

    /// The fields of a send (REST body or WebSocket frame), or the frame error to answer.
    static func sendFields(_ fields: [String: JSONValue]) -> Result<(receiver: String, text: String, clientId: String?), FrameError> {
        var clientId: String?
        if let raw = fields["client_id"], raw != .null {
            guard case let .string(s) = raw else {
                return .failure(FrameError(code: "invalid_frame", detail: "client_id must be a string.", clientId: nil))
            }
            guard fitsInScalars(s, 64) else {
                return .failure(FrameError(code: "invalid_frame", detail: "client_id may hold at most 64 characters.", clientId: nil))
            }
            clientId = s
        }
        guard case let .string(text)? = fields["message"] else {
            return .failure(FrameError(code: "invalid_frame", detail: "A message frame needs a string 'message'.", clientId: clientId))
        }
        guard case let .string(receiver)? = fields["receiver"], !receiver.isEmpty else {
            return .failure(FrameError(code: "invalid_frame", detail: "A message frame needs a string 'receiver'.", clientId: clientId))
        }
        guard !text.isEmpty else {
            return .failure(FrameError(code: "invalid_frame", detail: "The message is empty.", clientId: clientId))
        }
        guard fitsInScalars(text, 4096) else {
            return .failure(FrameError(code: "message_too_long", detail: "A message may hold at most 4096 characters.", clientId: clientId))
        }
        return .success((receiver, text, clientId))
    }
}

/// An error frame's fields (also a REST send's error body).
struct FrameError: Error, Sendable {
    var code: String
    var detail: String
    var clientId: String?

    /// A send the log could not store (it failed before the message was durable).
    static func notStored(clientId: String?) -> FrameError {
        FrameError(code: "unavailable", detail: "The message could not be stored.", clientId: clientId)
    }

    var frame: String {
        "{\"type\":\"error\",\"code\":\(jsonQuoted(code)),\"detail\":\(jsonQuoted(detail)),\"client_id\":\(clientId.map(jsonQuoted) ?? "null")}"
    }
}
