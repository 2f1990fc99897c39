import NIOCore

/// A server text frame as the bytes a socket writes: header and payload in one buffer,
/// encoded once however many sockets it goes to (writes share the buffer, no copies).
struct WireFrame: Sendable {
    private static let allocator = ByteBufferAllocator()

    /// Header and payload: unmasked, FIN, opcode text.
    let bytes: ByteBuffer

    init(_ text: String) {
        self.init(length: text.utf8.count) { $0.writeString(text) }
    }

    init(payload: [UInt8]) {
        self.init(length: payload.count) { $0.writeBytes(payload) }
    }

    private init(length: Int, writePayload: (inout ByteBuffer) -> Void) {
        var buffer = Self.allocator.buffer(capacity: 10 + length)
        buffer.writeInteger(UInt8(0x81))
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
        writePayload(&buffer)
        bytes = buffer
    }

    /// The payload alone, for channels without a WebSocket encoder to write beneath.
    var payload: ByteBuffer {
        let marker = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self) ?? 0
        let header = marker < 126 ? 2 : marker == 126 ? 4 : 10
        return bytes.getSlice(at: bytes.readerIndex + header, length: bytes.readableBytes - header) ?? ByteBuffer()
    }

    var text: String { String(buffer: payload) }
}
