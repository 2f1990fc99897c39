import Foundation
import JWTKit
import Projections

/// SimpleJWT-shaped claims: `token_type`, `exp`, `iat`, `jti`, `user_id`, plus the session `sid`.
struct TokenClaims: JWTPayload, Equatable {
    var token_type: String
    var exp: Int64
    var iat: Int64
    var jti: String
    var user_id: Int
    var sid: String

    func verify(using algorithm: some JWTAlgorithm) async throws {
        if exp <= Int64(Date().timeIntervalSince1970) {
            throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "expired")
        }
    }
}

/// Verified claims of one token, in the server's own types.
struct VerifiedToken: Sendable {
    var userId: UInt32
    var sessionId: TokenID
    var jti: TokenID
    var kind: String
}

/// Issues and checks HS256 tokens with the configured lifetimes.
struct TokenService: Sendable {
    let keys: JWTKeyCollection
    let accessLifetime: Int64
    let refreshLifetime: Int64

    init(secret: [UInt8], accessLifetime: Int64, refreshLifetime: Int64) async {
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(key: SymmetricKeyShim.make(secret)), digestAlgorithm: .sha256)
        self.accessLifetime = accessLifetime
        self.refreshLifetime = refreshLifetime
    }

    /// A token pair for a session; `now` in seconds.
    func pair(userId: UInt32, session: TokenID, refreshJti: TokenID, now: Int64) async throws -> (access: String, refresh: String) {
        let access = TokenClaims(token_type: "access", exp: now + accessLifetime, iat: now,
                                 jti: TokenID.random().hex, user_id: Int(userId), sid: session.hex)
        let refresh = TokenClaims(token_type: "refresh", exp: now + refreshLifetime, iat: now,
                                  jti: refreshJti.hex, user_id: Int(userId), sid: session.hex)
        return (try await keys.sign(access), try await keys.sign(refresh))
    }

    /// The claims of a well-signed, unexpired token of `kind`; nil for anything else.
    func verify(_ token: String, kind: String) async -> VerifiedToken? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.count < 4096, parts.count == 3, Self.headerNamesHS256(parts[0]) else { return nil }
        guard let claims = try? await keys.verify(token, as: TokenClaims.self),
              claims.token_type == kind,
              claims.user_id > 0, claims.user_id <= Int(UInt32.max),
              let sid = TokenID(hex: claims.sid), let jti = TokenID(hex: claims.jti)
        else { return nil }
        return VerifiedToken(userId: UInt32(claims.user_id), sessionId: sid, jti: jti, kind: kind)
    }

    /// True when the header names exactly what we sign with. JWTKit checks the signature with
    /// our key whatever the header says, so without this a token naming another algorithm (or
    /// none, or carrying no JSON header at all) would pass if signed with our key.
    static func headerNamesHS256(_ segment: Substring) -> Bool {
        var base64 = segment.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64),
              case let .object(header)? = try? JSONParser.parse([UInt8](data)) else { return false }
        return header["alg"] == .string("HS256")
    }
}
