import Foundation
import Testing
@testable import Projections

/// Timestamps, public conversation ids, JSON escaping and audit lines.
@Suite struct FormattingTests {
    @Test func timestampsFormatAsRFC3339Micros() {
        #expect(formatTimestamp(0) == "1970-01-01T00:00:00.000000Z")
        #expect(formatTimestamp(1_795_547_515_123_456) == "2026-11-24T19:11:55.123456Z")
        #expect(formatTimestamp(-1) == "1969-12-31T23:59:59.999999Z")
        #expect(formatTimestamp(951_782_400_000_000) == "2000-02-29T00:00:00.000000Z")
        #expect(formatTimestamp(253_402_300_799_999_999) == "9999-12-31T23:59:59.999999Z")
        _ = formatTimestamp(.min)
        _ = formatTimestamp(.max)
    }

    @Test func timestampsParseBack() {
        var rng = SeededRNG(seed: 3)
        for _ in 0..<10_000 {
            let micros = Int64.random(in: -62_135_596_800_000_000...253_402_300_799_999_999, using: &rng)
            #expect(parseTimestamp(formatTimestamp(micros)) == micros)
        }
        #expect(parseTimestamp("2026-11-24T19:11:55Z") == 1_795_547_515_000_000)
        #expect(parseTimestamp("2026-11-24T20:11:55.5+01:00") == 1_795_547_515_500_000)
        #expect(parseTimestamp("2026-11-24T19:11:55.1234567Z") == 1_795_547_515_123_456)
        for bad in ["", "2026-11-24", "2026-11-24T19:11:55", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
                    "2026-11-24T24:00:00Z", "2026-11-24T19:11:55.Z", "2026-11-24T19:11:55Zx", "x026-11-24T19:11:55Z"] {
            #expect(parseTimestamp(bad) == nil, "\(bad)")
        }
    }

    @Test func conversationIdsRoundTrip() {
        var seen = Set<String>()
        for n: UInt32 in [1, 2, 3, 1000, UInt32.max] {
            let id = publicConversationId(n)
            #expect(id.hasPrefix("c_"))
            #expect(id.utf8.count == 18)
            #expect(id.dropFirst(2).allSatisfy { "0123456789abcdef".contains($0) })
            #expect(parseConversationId(id) == n)
            seen.insert(id)
        }
        #expect(seen.count == 5)
        var rng = SeededRNG(seed: 5)
        for _ in 0..<10_000 {
            let n = UInt32.random(in: 1...UInt32.max, using: &rng)
            #expect(parseConversationId(publicConversationId(n)) == n)
        }
        // Sequential numbers do not look sequential.
        #expect(publicConversationId(1).prefix(6) != publicConversationId(2).prefix(6))
    }

    @Test func malformedConversationIdsAreRejected() {
        let good = publicConversationId(7)
        for bad in ["", "c_", "c_123", "d" + good.dropFirst(), good.uppercased(), "C" + good.dropFirst(),
                    good + "0", String(good.dropLast()) + "g", "c_0000000000000000", "c_ffffffffffffffff"] {
            #expect(parseConversationId(bad) == nil, "\(bad)")
        }
        #expect(parseConversationId(publicConversationId(0)) == nil)
        // Nearly every random 64-bit value maps outside 32 bits.
        var rng = SeededRNG(seed: 11)
        var accepted = 0
        for _ in 0..<10_000 {
            let hex = String(rng.next(), radix: 16)
            if parseConversationId("c_" + String(repeating: "0", count: 16 - hex.count) + hex) != nil { accepted += 1 }
        }
        #expect(accepted < 5)
    }

    @Test func jsonEscaping() throws {
        #expect(jsonQuoted("plain") == "\"plain\"")
        #expect(jsonQuoted("a\"b\\c") == "\"a\\\"b\\\\c\"")
        #expect(jsonQuoted("\n\t\u{01}\u{1F}") == "\"\\u000a\\u0009\\u0001\\u001f\"")
        #expect(jsonQuoted("é😀/") == "\"é😀/\"")
        let tricky = "\"\\\u{0}\u{7F}\u{2028}é😀\r\n"
        let data = Data(jsonQuoted(tricky).utf8)
        let parsed = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? String
        #expect(parsed == tricky)
    }

    @Test func auditJSONShapesAndRedacts() throws {
        for event in sampleEvents {
            let redacted = event.auditJSON(seq: 5, timestamp: 1_795_547_515_123_456, includeSecrets: false)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(redacted.utf8)) as? [String: Any])
            #expect(object["seq"] as? Int == 5)
            #expect(object["time"] as? String == "2026-11-24T19:11:55.123456Z")
            #expect(object["type"] as? String == event.typeName)
            #expect(object["version"] as? Int == Int(event.version))
            #expect(!redacted.contains("pbkdf2"))
            #expect(!redacted.contains(tok(2).hex))
        }
        let message = sampleEvents[9].auditJSON(seq: 9, timestamp: t0, includeSecrets: false, recordVersion: 1)
        #expect(message.hasPrefix("{\"seq\":9,\"time\":\"2026-11-24T19:11:55.000000Z\",\"type\":\"MessageSent\",\"version\":1,\"conversation_id\":\"\(publicConversationId(1))\""))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(message.utf8)) as? [String: Any])
        #expect(object["text"] as? String == "héllo \"wörld\" 😀\n")
        #expect(object["client_id"] as? String == "c-1")
        #expect(sampleEvents[10].auditJSON(seq: 1, timestamp: 0, includeSecrets: false).contains("\"client_id\":null"))

        let registered = sampleEvents[0]
        #expect(registered.auditJSON(seq: 1, timestamp: 0, includeSecrets: false).contains("\"password_hash\":\"<redacted>\""))
        #expect(registered.auditJSON(seq: 1, timestamp: 0, includeSecrets: true).contains("\"password_hash\":\"pbkdf2_sha256$870000$salt$aGFzaA==\""))
        let login = sampleEvents[1]
        #expect(login.auditJSON(seq: 1, timestamp: 0, includeSecrets: false).contains("\"refresh_jti\":\"<redacted>\""))
        #expect(login.auditJSON(seq: 1, timestamp: 0, includeSecrets: true).contains(tok(2).hex))
        #expect(login.auditJSON(seq: 1, timestamp: 0, includeSecrets: false).contains(tok(1).hex))
    }

    @Test func stableHashIsFNV1a() {
        var h = FNV1a64()
        h.update(Array("a".utf8))
        #expect(h.value == 0xAF63_DC4C_8601_EC8C)
        #expect(clientIdKey(sender: 1, clientId: "x") == clientIdKey(sender: 1, clientId: "x"))
        #expect(clientIdKey(sender: 1, clientId: "x") != clientIdKey(sender: 2, clientId: "x"))
    }
}
