import Foundation
import Projections

/// A user's data export (`GET /api/account/export/`): the Ledger hands out the opening and the
/// list of conversations; the route streams each conversation's messages a page at a time.
extension Ledger {
    /// One conversation of an export: its number and the other participant's name.
    struct ExportedConversation: Sendable {
        var number: UInt32
        var with: String
    }

    /// The export's opening JSON up to the start of its conversations array
    /// (`{"user":…,"sessions":[…],"conversations":[`), and the conversations to stream, oldest
    /// first. Nil if the session is not live.
    func exportOpening(for token: VerifiedToken) -> (opening: String, username: String, conversations: [ExportedConversation])? {
        guard isLive(token), let user = views.users.user(token.userId) else { return nil }
        let id = token.userId
        let now = nowMicros
        let sessions = views.sessions.allSessions(of: id).map { s -> String in
            let (ended, how): (Int64?, String?) = switch s.state {
            case .loggedOut: (s.endedAt, "logout")
            case .revoked: (s.endedAt, "revoked")
            case .accountDeleted: (s.endedAt, "deleted")
            case .open: s.expiresAt <= now ? (s.expiresAt, "expired") : (nil, nil)
            }
            let endedJSON = ended.map { jsonQuoted(formatTimestamp($0)) } ?? "null"
            return "{\"started\":\(jsonQuoted(formatTimestamp(s.createdAt))),\"ended\":\(endedJSON),\"how\":\(how.map(jsonQuoted) ?? "null")}"
        }
        let opening = "{\"user\":{\"id\":\(id),\"username\":\(jsonQuoted(name(of: id))),\"date_joined\":\(jsonQuoted(formatTimestamp(user.registeredAt)))},"
            + "\"sessions\":[\(sessions.joined(separator: ","))],\"conversations\":["
        let conversations = views.conversations.conversations(of: id).sorted().compactMap { number -> ExportedConversation? in
            guard let info = views.conversations.conversation(number) else { return nil }
            return ExportedConversation(number: number, with: name(of: info.otherParticipant(than: id)))
        }
        return (opening, name(of: id), conversations)
    }
}
