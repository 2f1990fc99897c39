import Foundation
import Hummingbird
import NIOCore

/// Reads a POST body as the contract allows: JSON or form-encoded, at most 64 KiB,
/// always an object of fields.
enum RequestBody {
    static let maxBytes = 64 * 1024

    static let tooLarge = APIError(.contentTooLarge, "request_too_large", "Request body exceeds 65536 bytes.")

    static func fields(of request: Request) async throws -> [String: JSONValue] {
        var request = request
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
        let bytes = Array(buffer.readableBytesView)
        switch mediaType {
        case "application/json", "":
            if mediaType.isEmpty && bytes.isEmpty { return [:] }
            let value: JSONValue
            do {
                value = try JSONParser.parse(bytes)
            } catch let error as JSONParseError {
                throw APIError(.badRequest, "parse_error", "JSON parse error - \(error.message)")
            }
            guard case let .object(fields) = value else {
                throw APIError(.badRequest, "parse_error", "Expected a JSON object as the request body.")
            }
            return fields
        case "application/x-www-form-urlencoded":
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw APIError(.badRequest, "parse_error", "Form body is not valid UTF-8.")
            }
            var fields: [String: JSONValue] = [:]
            for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let key = formDecode(parts[0]) else { throw APIError(.badRequest, "parse_error", "Malformed form body.") }
                let value = parts.count > 1 ? formDecode(parts[1]) : ""
                guard let value else { throw APIError(.badRequest, "parse_error", "Malformed form body.") }
                fields[key] = .string(value)
            }
            return fields
        default:
            throw APIError(.unsupportedMediaType, "unsupported_media_type",
                           "Unsupported media type \"\(mediaType)\" in request.")
        }
    }

    private static func formDecode<S: StringProtocol>(_ s: S) -> String? {
        String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
