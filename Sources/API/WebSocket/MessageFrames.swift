import Projections

/// How a message is written for clients: the REST object (`json`), the receivers' `message`
/// frame and the sender's `message.ack`. One renderer, to bytes; the string forms decode them.
/// A message whose sender deleted their account has `"message": null, "erased": true`.
extension StoredMessage {
    var json: String { String(decoding: objectBytes(type: nil, SharedParts(self)), as: UTF8.self) }

    /// The message object, optionally tagged with a frame `type`.
    func fields(type: String?) -> String { String(decoding: objectBytes(type: type, SharedParts(self)), as: UTF8.self) }

    var ackFrame: String { String(decoding: ackBytes(SharedParts(self)), as: UTF8.self) }

    var messageWireFrame: WireFrame { WireFrame(payload: objectBytes(type: "message", SharedParts(self))) }

    var ackWireFrame: WireFrame { WireFrame(payload: ackBytes(SharedParts(self))) }

    /// The sender's ack and the receivers' `message` frame in one pass: the id, conversation
    /// id and timestamp are formatted once for both.
    func wireFrames() -> (ack: WireFrame, message: WireFrame) {
        let parts = SharedParts(self)
        return (WireFrame(payload: ackBytes(parts)), WireFrame(payload: objectBytes(type: "message", parts)))
    }

    /// The formatted values every rendering of a message holds, as JSON: slices of one buffer.
    private struct SharedParts {
        let id: ArraySlice<UInt8>
        /// Quoted.
        let conversation: ArraySlice<UInt8>
        /// Quoted.
        let time: ArraySlice<UInt8>

        init(_ message: StoredMessage) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(64)
            appendDecimal(message.id, to: &bytes)
            let idEnd = bytes.count
            bytes.append(UInt8(ascii: "\""))
            appendPublicConversationId(message.conversation, to: &bytes)
            bytes.append(UInt8(ascii: "\""))
            let conversationEnd = bytes.count
            bytes.append(UInt8(ascii: "\""))
            appendTimestamp(message.timestamp, to: &bytes)
            bytes.append(UInt8(ascii: "\""))
            id = bytes[..<idEnd]
            conversation = bytes[idEnd..<conversationEnd]
            time = bytes[conversationEnd...]
        }
    }

    private func objectBytes(type: String?, _ parts: SharedParts) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(176 + (text?.utf8.count ?? 0))
        out.append(UInt8(ascii: "{"))
        if let type {
            out.append(contentsOf: #""type":"#.utf8)
            appendJSONString(type, to: &out)
            out.append(UInt8(ascii: ","))
        }
        out.append(contentsOf: #""id":"#.utf8)
        out.append(contentsOf: parts.id)
        out.append(contentsOf: #","conversation_id":"#.utf8)
        out.append(contentsOf: parts.conversation)
        out.append(contentsOf: #","sender":"#.utf8)
        appendJSONString(sender, to: &out)
        out.append(contentsOf: #","receiver":"#.utf8)
        appendJSONString(receiver, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        if let text {
            appendJSONString(text, to: &out)
            out.append(contentsOf: #","erased":false"#.utf8)
        } else {
            out.append(contentsOf: #"null,"erased":true"#.utf8)
        }
        out.append(contentsOf: #","timestamp":"#.utf8)
        out.append(contentsOf: parts.time)
        out.append(UInt8(ascii: "}"))
        return out
    }

    private func ackBytes(_ parts: SharedParts) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        out.append(contentsOf: #"{"type":"message.ack","id":"#.utf8)
        out.append(contentsOf: parts.id)
        out.append(contentsOf: #","conversation_id":"#.utf8)
        out.append(contentsOf: parts.conversation)
        out.append(contentsOf: #","client_id":"#.utf8)
        if let clientId { appendJSONString(clientId, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","timestamp":"#.utf8)
        out.append(contentsOf: parts.time)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
