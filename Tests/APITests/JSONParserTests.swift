import Foundation
import Projections
import Testing
@testable import API

/// The strict parser every request body and socket frame goes through: what it accepts, what
/// it refuses, and that text from a `String` and the same bytes parse alike.
@Suite struct JSONParserTests {
    /// Both entry points; they must agree on everything valid UTF-8 can hold.
    private func parseBoth(_ text: String) throws -> JSONValue {
        let fromText = try JSONParser.parse(text)
        let fromBytes = try JSONParser.parse(Array(text.utf8))
        #expect(fromText == fromBytes)
        return fromText
    }

    @Test func aFrameParsesIntoItsFields() throws {
        let value = try parseBoth(#" {"receiver": "bob", "message":"héllo 👋", "client_id" :null, "n": -12.5e3, "ok": [true, false]} "#)
        #expect(value == .object([
            "receiver": .string("bob"), "message": .string("héllo 👋"), "client_id": .null,
            "n": .number("-12.5e3"), "ok": .array([.bool(true), .bool(false)]),
        ]))
    }

    @Test func escapesAreDecoded() throws {
        #expect(try parseBoth(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        #expect(try parseBoth(#""\u00e9\u20AC\ud83d\ude00x""#) == .string("é€😀x"))
        #expect(try parseBoth(#""plain then \n escaped""#) == .string("plain then \n escaped"))
        #expect(try parseBoth(#""""#) == .string(""))
    }

    @Test func invalidJSONIsRefused() {
        let bad = [
            "", "{", "{\"a\":}", "{\"a\" 1}", "[1,]", "{\"a\":1,}", "tru", "nul", "01", "1.", "-", "1e",
            "\"unterminated", "\"bad \\x escape\"", "\"\\ud83d alone\"", "\"\\ude00\"", "\"\\u12\"",
            "{} {}", "\"tab\there\"", "{'a': 1}",
        ]
        for text in bad {
            #expect(throws: JSONParseError.self, "\(text)") { try JSONParser.parse(text) }
            #expect(throws: JSONParseError.self, "\(text)") { try JSONParser.parse(Array(text.utf8)) }
        }
    }

    @Test func invalidUTF8InBytesIsRefused() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0x61, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xC0, 0xAF, 0x22]] {
            #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
            #expect(throws: JSONParseError.self) { try JSONParser.parse([0x7B, 0x22, 0x6B, 0x22, 0x3A] + bytes + [0x7D]) }
        }
    }

    @Test func nestingIsBounded() throws {
        let deep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        _ = try parseBoth(fine)
    }

    /// Random strings rendered by our writer come back as they were, escapes or not.
    @Test func renderedStringsRoundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1f}", "é", "€", "😀", "👩‍👩‍👧", "\u{7f}", "\u{2028}"]
        for _ in 0..<500 {
            let text = String((0..<Int.random(in: 0...40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            #expect(try parseBoth(jsonQuoted(text)) == .string(text))
            #expect(try parseBoth("{\"k\":\(jsonQuoted(text))}") == .object(["k": .string(text)]))
        }
    }
}
