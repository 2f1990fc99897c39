import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import API

#if canImport(Glibc)
import Glibc
#endif

/// A frame over the size limit ends the socket with 1009, and the server reads on after its
/// close frame so that a client still pushing that frame neither has its send fail nor loses
/// the close frame to a reset.
@Suite struct LingeringCloseTests {
    @Test func aClientStillSendingAnOversizedFrameFinishesItsSendAndReads1009() async throws {
        let (failure, code) = try await withUpgradedSocket(user: "lin") { socket in
            let size = 1 << 20
            try socket.send(RawSocket.maskedTextHeader(length: size))
            // The server reads the header and closes while most of the payload is still to come.
            var failure: Int32?
            var sent = 0
            while sent < size, failure == nil {
                let chunk = min(64 << 10, size - sent)
                failure = socket.trySend([UInt8](repeating: UInt8(ascii: "y"), count: chunk))
                sent += chunk
                usleep(5_000)
            }
            return (failure, socket.closeCode())
        }
        #expect(failure == nil, "a send failed with errno \(failure ?? 0): the server reset the connection")
        #expect(code == 1009)
    }

    @Test func aPeerThatNeitherSendsNorClosesIsDisconnectedAfterTheTimeout() async throws {
        let (code, early, late) = try await withUpgradedSocket(user: "mum") { socket in
            try socket.send(RawSocket.maskedTextHeader(length: 1 << 20))
            let code = socket.closeCode()
            // Still lingering: bytes are read and dropped, so two sends in a row both succeed.
            let early = socket.trySend([1]) ?? socket.trySend([2], after: 100_000)
            usleep(UInt32(LingeringClose.timeout.nanoseconds / 1000) + 1_000_000)
            // Gone: the first byte draws a reset, the second send reports it.
            let late = socket.trySend([3]) ?? socket.trySend([4], after: 200_000)
            return (code, early, late)
        }
        #expect(code == 1009)
        #expect(early == nil, "the server stopped reading before its linger timeout")
        #expect(late != nil, "the server still held the connection after its linger timeout")
    }
}

/// Starts a live server, registers `user`, upgrades a raw socket with their token and runs
/// `work` on it on its own thread: blocking socket calls stay off the cooperative pool that
/// the server's actors use.
private func withUpgradedSocket<T: Sendable>(user: String, _ work: @escaping @Sendable (RawSocket) throws -> T) async throws -> T {
    let data = TestData()
    let service = try await data.service()
    let result = try await service.application().test(.live) { client in
        let account = try await client.account(user)
        let port = try #require(client.port)
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    let socket = try RawSocket(port: port)
                    try socket.upgrade(token: account.access)
                    return try work(socket)
                })
            }
        }
    }
    await service.shutdown()
    return result
}

/// A blocking TCP client that speaks just enough WebSocket to send a raw frame.
private final class RawSocket: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw Failure(description: "connect: errno \(errno)") }
    }

    deinit { Glibc.close(fd) }

    static func maskedTextHeader(length: Int) -> [UInt8] {
        // FIN + text, mask bit + 64-bit length, then an all-zero masking key (payload sent as is).
        [0x81, 0x80 | 127] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: length >> ($0 * 8)) } + [0, 0, 0, 0]
    }

    func upgrade(token: String) throws {
        let request = "GET /api/chat/send/?token=\(token) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try send(Array(request.utf8))
        var head: [UInt8] = []
        while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
            var byte: UInt8 = 0
            guard recv(fd, &byte, 1, 0) == 1 else { throw Failure(description: "no upgrade answer") }
            head.append(byte)
        }
        let status = String(decoding: head, as: UTF8.self)
        guard status.hasPrefix("HTTP/1.1 101") else { throw Failure(description: "upgrade refused: \(status)") }
    }

    func send(_ bytes: [UInt8]) throws {
        if let failure = trySend(bytes) { throw Failure(description: "send: errno \(failure)") }
    }

    /// Nil when every byte went out, else the errno of the failed send.
    func trySend(_ bytes: [UInt8], after delay: UInt32 = 0) -> Int32? {
        if delay > 0 { usleep(delay) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { return errno }
            offset += n
        }
        return nil
    }

    /// The code of the first close frame the server sends, reading up to its end of stream.
    func closeCode() -> Int? {
        var input: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            input += buffer[..<n]
        }
        var at = 0
        while at + 2 <= input.count {
            let opcode = input[at] & 0x0F
            var length = Int(input[at + 1] & 0x7F)
            var start = at + 2
            if length == 126, start + 2 <= input.count {
                length = Int(input[start]) << 8 | Int(input[start + 1])
                start += 2
            } else if length == 127 {
                return nil
            }
            if opcode == 0x8, length >= 2, start + 2 <= input.count {
                return Int(input[start]) << 8 | Int(input[start + 1])
            }
            at = start + length
        }
        return nil
    }
}
