import Projections

extension StoredMessage {
    /// The sender's `message.ack` and the receivers' `message` frame, rendered as bytes in one
    /// pass: the conversation id and the timestamp are formatted once for both, and no
    /// intermediate strings are built. Same bytes as `ackFrame` and `fields(type: "message")`.
    func wireFrames() -> (ack: WireFrame, message: WireFrame) {
        var conversation: [UInt8] = [UInt8(ascii: "\"")]
        conversation.reserveCapacity(20)
        appendPublicConversationId(self.conversation, to: &conversation)
        conversation.append(UInt8(ascii: "\""))
        var time: [UInt8] = []
        time.reserveCapacity(29)
        appendJSONString(formatTimestamp(timestamp), to: &time)
        let id = Array(String(self.id).utf8)

        var ack: [UInt8] = []
        ack.reserveCapacity(128)
        ack.append(contentsOf: #"{"type":"message.ack","id":"#.utf8)
        ack.append(contentsOf: id)
        ack.append(contentsOf: #","conversation_id":"#.utf8)
        ack.append(contentsOf: conversation)
        ack.append(contentsOf: #","client_id":"#.utf8)
        if let clientId { appendJSONString(clientId, to: &ack) } else { ack.append(contentsOf: "null".utf8) }
        ack.append(contentsOf: #","timestamp":"#.utf8)
        ack.append(contentsOf: time)
        ack.append(UInt8(ascii: "}"))

        var message: [UInt8] = []
        message.reserveCapacity(160 + text.utf8.count)
        message.append(contentsOf: #"{"type":"message","id":"#.utf8)
        message.append(contentsOf: id)
        message.append(contentsOf: #","conversation_id":"#.utf8)
        message.append(contentsOf: conversation)
        message.append(contentsOf: #","sender":"#.utf8)
        appendJSONString(sender, to: &message)
        message.append(contentsOf: #","receiver":"#.utf8)
        appendJSONString(receiver, to: &message)
        message.append(contentsOf: #","message":"#.utf8)
        appendJSONString(text, to: &message)
        message.append(contentsOf: #","timestamp":"#.utf8)
        message.append(contentsOf: time)
        message.append(UInt8(ascii: "}"))
        return (WireFrame(payload: ack), WireFrame(payload: message))
    }
}
