import Testing
@testable import EventLog
@testable import Projections

/// Payload codec: round trips, upcasting, and errors instead of crashes.
@Suite struct EventCodecTests {
    @Test func everyEventRoundTrips() throws {
        for event in sampleEvents {
            let record = event.record(timestamp: t0)
            #expect(record.type == event.typeId)
            #expect(record.version == event.version)
            #expect(record.version == event.type.currentVersion || event.isPlaintextPersonal)
            let decoded = try record.payload.withUnsafeBytes {
                try Event.decode(type: record.type, version: record.version, payload: $0)
            }
            #expect(decoded == event)
        }
    }

    @Test func everyTypeIsCovered() {
        #expect(Set(sampleEvents.map(\.type)) == Set(EventType.allCases))
        #expect(EventType.allCases.map(\.rawValue) == Array(1...12))
        #expect(sampleEvents.contains { $0.version == 2 && $0.type == .userRegistered }, "a sealed registration")
        #expect(sampleEvents.contains { $0.version == 3 && $0.type == .messageSent }, "a sealed message")
    }

    @Test func typeNamesMapBothWays() {
        #expect(Event.typeName(for: 10) == "MessageSent")
        #expect(Event.typeName(for: 99) == nil)
        #expect(Event.typeId(named: "MessageSent") == 10)
        #expect(Event.typeId(named: "sessionrevoked") == 4)
        #expect(Event.typeId(named: "Nope") == nil)
        for t in EventType.allCases { #expect(Event.typeId(named: t.name) == t.rawValue) }
    }

    @Test func messageSentV1IsUpcastWithoutClientId() throws {
        let payload = messageSentV1Payload(conversation: 4, sender: 2, receiver: 3, text: "old ✓")
        let event = try payload.withUnsafeBytes { try Event.decode(type: 10, version: 1, payload: $0) }
        #expect(event == .messageSent(MessageSent(conversation: 4, senderId: 2, receiverId: 3, text: "old ✓", clientId: nil)))
        #expect(event.version == 2)
    }

    @Test func unknownTypeAndVersionThrowWithSeq() {
        let record = Record(seq: 42, timestamp: t0, type: 99, version: 1, payload: [])
        #expect(throws: EventDecodingError("unknown event type 99", seq: 42)) { try Event.decode(record) }
        #expect(throws: EventDecodingError("unknown version 4 of MessageSent")) {
            try [UInt8]().withUnsafeBytes { try Event.decode(type: 10, version: 4, payload: $0) }
        }
        #expect(throws: EventDecodingError.self) {
            try [UInt8]().withUnsafeBytes { try Event.decode(type: 1, version: 0, payload: $0) }
        }
        #expect(EventDecodingError("unknown event type 99", seq: 42).description == "seq 42: unknown event type 99")
    }

    @Test func everyTruncationThrows() {
        for event in sampleEvents {
            let record = event.record(timestamp: t0)
            for cut in 0..<record.payload.count {
                let short = Array(record.payload[0..<cut])
                #expect(throws: EventDecodingError.self) {
                    try short.withUnsafeBytes { try Event.decode(type: record.type, version: record.version, payload: $0) }
                }
                var set = ProjectionSet()
                #expect(throws: EventDecodingError.self) {
                    try set.apply(Record(seq: 1, timestamp: t0, type: record.type, version: record.version, payload: short))
                }
            }
        }
    }

    @Test func trailingBytesThrow() {
        for event in sampleEvents {
            let record = event.record(timestamp: t0)
            let long = record.payload + [0]
            #expect(throws: EventDecodingError.self) {
                try long.withUnsafeBytes { try Event.decode(type: record.type, version: record.version, payload: $0) }
            }
            var set = ProjectionSet()
            #expect(throws: EventDecodingError.self) {
                try set.apply(Record(seq: 1, timestamp: t0, type: record.type, version: record.version, payload: long))
            }
        }
    }

    @Test func invalidUTF8Throws() throws {
        // Username "a\xFF": length 2, then an invalid byte.
        let badName: [UInt8] = [1, 2, 0x61, 0xFF, 1, 0x68]
        #expect(throws: EventDecodingError.self) {
            try badName.withUnsafeBytes { try Event.decode(type: 1, version: 1, payload: $0) }
        }
        // Message text with a lone surrogate (ED A0 80), in both the full decoder and the replay fast path.
        let badText: [UInt8] = [1, 1, 2, 3, 0xED, 0xA0, 0x80, 0]
        #expect(throws: EventDecodingError.self) {
            try badText.withUnsafeBytes { try Event.decode(type: 10, version: 2, payload: $0) }
        }
        var set = ProjectionSet()
        let error = #expect(throws: EventDecodingError.self) {
            try set.apply(Record(seq: 7, timestamp: t0, type: 10, version: 2, payload: badText))
        }
        #expect(error?.seq == 7)
        #expect(error?.description.hasPrefix("seq 7: MessageSent v2: invalid UTF-8") == true)
        // Client id "\xC0\xAF" (overlong).
        let badClient: [UInt8] = [1, 1, 2, 0, 1, 2, 0xC0, 0xAF]
        #expect(throws: EventDecodingError.self) {
            try set.apply(Record(seq: 8, timestamp: t0, type: 10, version: 2, payload: badClient))
        }
        #expect(set == ProjectionSet())
    }

    @Test func malformedVarintsAndFlagsThrow() {
        let tooLong = [UInt8](repeating: 0xFF, count: 11)
        #expect(throws: EventDecodingError.self) {
            try tooLong.withUnsafeBytes { try Event.decode(type: 8, version: 1, payload: $0) }
        }
        // A user id beyond 32 bits.
        let wide: [UInt8] = [0x80, 0x80, 0x80, 0x80, 0x10, 0, 0]
        #expect(throws: EventDecodingError.self) {
            try wide.withUnsafeBytes { try Event.decode(type: 6, version: 1, payload: $0) }
        }
        // Client-id flag must be 0 or 1.
        let flag: [UInt8] = [1, 1, 2, 0, 2]
        #expect(throws: EventDecodingError.self) {
            try flag.withUnsafeBytes { try Event.decode(type: 10, version: 2, payload: $0) }
        }
        // A string length far past the payload.
        let huge: [UInt8] = [1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
        #expect(throws: EventDecodingError.self) {
            try huge.withUnsafeBytes { try Event.decode(type: 1, version: 1, payload: $0) }
        }
    }

    @Test func randomGarbageNeverCrashes() {
        var rng = SeededRNG(seed: 99)
        for _ in 0..<20_000 {
            let type = UInt16.random(in: 0...11, using: &rng)
            let version = UInt16.random(in: 0...3, using: &rng)
            let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let full = bytes.withUnsafeBytes { try? Event.decode(type: type, version: version, payload: $0) }
            var set = ProjectionSet()
            let fast = (try? set.apply(Record(seq: 1, timestamp: t0, type: type, version: version, payload: bytes))) != nil
            // Both decoders accept exactly the same payloads.
            #expect((full != nil) == fast)
        }
    }

    @Test func utf8ValidatorAgreesWithStandardLibrary() {
        var rng = SeededRNG(seed: 7)
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xA0, 0xED, 0x9F,
                                    0xEF, 0xF0, 0x90, 0xF4, 0x8F, 0xF5, 0xFF]
        for _ in 0..<50_000 {
            let n = Int.random(in: 0...12, using: &rng)
            let bytes = (0..<n).map { _ in
                Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            let ours = bytes.withUnsafeBytes { isValidUTF8($0) }
            let stdlib = String(validating: bytes, as: UTF8.self) != nil
            #expect(ours == stdlib, "\(bytes)")
        }
        let long = Array("plain ascii text that is long enough for the word loop, then é".utf8)
        #expect(long.withUnsafeBytes { isValidUTF8($0) })
    }

    @Test func tokenIdHex() {
        let t = TokenID(hi: 0x0123_4567_89AB_CDEF, lo: 0xF)
        #expect(t.hex == "0123456789abcdef000000000000000f")
        #expect(TokenID(hex: t.hex) == t)
        #expect(TokenID(hex: t.hex.uppercased()) == t)
        #expect(TokenID(hex: "xyz") == nil)
        #expect(TokenID(hex: String(t.hex.dropLast())) == nil)
        #expect(TokenID(hex: String(t.hex.dropLast()) + "g") == nil)
        #expect(TokenID.random() != TokenID.random())
    }
}
