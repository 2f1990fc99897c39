import Foundation
import Hummingbird
import Projections

/// `POST /api/account/delete/` and `GET /api/account/export/` (API.md, "Accounts").
extension RouteHandlers {
    /// Erasure by crypto-shredding. The password is asked again; then `UserErased` is made
    /// durable, and only then is the key destroyed in the key store. A crash between the two
    /// leaves a durable erasure whose key the next start destroys before serving, so the
    /// outcome is "nothing happened" (crash before the event is durable) or "fully erased".
    func deleteAccount() async throws -> Response {
        let me = try await authenticate()
        let fields = try await RequestBody.fields(of: request)
        var errors: [String: [String]] = [:]
        guard let password = Validation.requiredString(fields, "password", into: &errors) else {
            throw APIError.invalid(errors)
        }
        // A stolen access token must not turn into a password oracle: wrong guesses count
        // against the same per-user limit as failed logins.
        let limitKey = "d:\(me.userId)"
        if let wait = service.userFailures.wait(limitKey) {
            throw APIError(.tooManyRequests, "throttled", "Too many wrong passwords; try again later.",
                           retryAfter: Int(wait.rounded(.up)))
        }
        let ledger = try ledger
        guard let hash = await ledger.passwordHash(of: me) else { throw APIError.tokenNotValid }
        guard try await service.hasher.verify(password, against: hash) else {
            _ = service.userFailures.take(limitKey)
            throw APIError(.forbidden, "wrong_password", "The password is not correct.")
        }
        service.crashPoint("erase-before-event")
        guard let erased = try await ledger.erase(me) else { throw APIError.tokenNotValid }
        try await service.durable(erased.seq)
        service.crashPoint("erase-after-event")
        do {
            try await service.destroyKey(of: me.userId, in: ledger.keys)
        } catch {
            // Decided and durable; the key left memory already. The next start destroys it.
            service.logger.error("account \(me.userId) is erased, but its key could not be destroyed yet: \(error)")
            throw APIError(.serviceUnavailable, "storage_unavailable",
                           "The account is deleted; its key will be destroyed when storage recovers.")
        }
        service.crashPoint("erase-after-key")
        if let presence = erased.presence { service.hub.deliver(presence) }
        return Response.json("{\"detail\":\"Account deleted.\"}")
    }

    /// Everything the caller can read about themselves, streamed: each conversation's messages
    /// are read a page at a time, so a long history never has to fit in memory.
    func exportAccount() async throws -> Response {
        let me = try await authenticate()
        let ledger = try ledger
        guard let export = await ledger.exportOpening(for: me) else { throw APIError.tokenNotValid }
        let body = ResponseBody { writer in
            try await writer.write(ByteBuffer(string: export.opening))
            for (i, conversation) in export.conversations.enumerated() {
                try await writer.write(ByteBuffer(string:
                    (i > 0 ? "," : "") + "{\"conversation_id\":\(jsonQuoted(publicConversationId(conversation.number))),"
                        + "\"with\":\(jsonQuoted(conversation.with)),\"messages\":["))
                var after: UInt64 = 0
                var first = true
                while case let .page(messages, more) = try await ledger.history(
                    of: conversation.number, for: me.userId, after: after, limit: 500), !messages.isEmpty {
                    try await writer.write(ByteBuffer(string: (first ? "" : ",") + messages.map(\.json).joined(separator: ",")))
                    first = false
                    after = messages[messages.count - 1].id
                    if !more { break }
                }
                try await writer.write(ByteBuffer(string: "]}"))
            }
            try await writer.write(ByteBuffer(string: "]}"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [
            .contentType: "application/json; charset=utf-8",
            .contentDisposition: Self.attachment(filename: "chat-es-export-\(export.username).json"),
        ], body: body)
    }

    /// `attachment` with an ASCII `filename` (other characters as `_`) and the exact name as
    /// RFC 8187's `filename*`, since usernames may hold any letter.
    static func attachment(filename: String) -> String {
        let ascii = String(filename.unicodeScalars.map { s -> Character in
            s.isASCII && s.value >= 0x20 && s != "\"" && s != "\\" ? Character(s) : "_"
        })
        var encoded = ""
        for byte in filename.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if byte < 0x80, c.isLetter || c.isNumber || "-._~".contains(c) {
                encoded.append(c)
            } else {
                encoded += String(format: "%%%02X", byte)
            }
        }
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }
}
