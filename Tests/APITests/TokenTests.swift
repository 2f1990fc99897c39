import Crypto
import Foundation
import Testing
@testable import API
@testable import Projections

/// Tokens are accepted only as HS256 with our key, of the asked kind, unexpired.
@Suite struct TokenTests {
    static let secret = Array("token-tests-secret-0123456789abcdef".utf8)

    static func base64url(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A token with any header, signed HMAC-SHA256 with `secret` whatever the header says.
    static func forged(header: String, claims: String) -> String {
        let signingInput = base64url(Array(header.utf8)) + "." + base64url(Array(claims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: secret))
        return signingInput + "." + base64url(mac)
    }

    static func claims(kind: String = "access") -> String {
        let now = Int64(Date().timeIntervalSince1970)
        return #"{"token_type":"\#(kind)","exp":\#(now + 300),"iat":\#(now),"jti":"\#(TokenID.random().hex)","user_id":7,"sid":"\#(TokenID.random().hex)"}"#
    }

    @Test func onlyHS256HeadersWithOurKeyAreAccepted() async throws {
        let tokens = await TokenService(secret: Self.secret, accessLifetime: 300, refreshLifetime: 3600)
        let good = Self.forged(header: #"{"alg":"HS256","typ":"JWT"}"#, claims: Self.claims())
        #expect(await tokens.verify(good, kind: "access")?.userId == 7)
        #expect(await tokens.verify(good, kind: "refresh") == nil, "an access token is no refresh token")
        for header in [#"{"alg":"HS384","typ":"JWT"}"#, #"{"alg":"none","typ":"JWT"}"#, #"{"typ":"JWT"}"#, "not json"] {
            #expect(await tokens.verify(Self.forged(header: header, claims: Self.claims()), kind: "access") == nil, "\(header)")
        }
        let unsigned = Self.base64url(Array(#"{"alg":"none"}"#.utf8)) + "." + Self.base64url(Array(Self.claims().utf8)) + "."
        #expect(await tokens.verify(unsigned, kind: "access") == nil)
        let otherKey = await TokenService(secret: Array("another-secret-entirely-0123456789".utf8), accessLifetime: 300, refreshLifetime: 3600)
        #expect(await otherKey.verify(good, kind: "access") == nil)
        let pair = try await tokens.pair(userId: 3, session: TokenID.random(), refreshJti: TokenID.random(),
                                         now: Int64(Date().timeIntervalSince1970))
        #expect(await tokens.verify(pair.access, kind: "access")?.userId == 3, "our own tokens name HS256")
    }
}
