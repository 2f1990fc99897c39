import Foundation

/// Random 96-bit nonces from the kernel's CSPRNG, fetched 4 KiB at a time: the same bytes
/// `SystemRandomNumberGenerator` would give, without a `getrandom` system call per message.
final class NonceSource: @unchecked Sendable {
    static let shared = NonceSource()
    static let size = 12

    /// Opened once; /dev/urandom never blocks once the kernel's pool is seeded (at boot).
    private static let urandom: Int32 = {
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        precondition(fd >= 0, "cannot open /dev/urandom")
        return fd
    }()

    private let lock = NSLock()
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var used = 4096

    /// Calls `body` with the next 12 never-handed-out random bytes (no allocation).
    func withNext<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var nonce: (UInt64, UInt32) = (0, 0)
        lock.withLock {
            refillIfNeeded()
            buffer.withUnsafeBytes { raw in
                withUnsafeMutableBytes(of: &nonce) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[used..<(used + Self.size)])) }
            }
            used += Self.size
        }
        return try withUnsafeBytes(of: &nonce) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<Self.size])) }
    }

    /// Caller holds `lock`.
    private func refillIfNeeded() {
        guard used + Self.size > buffer.count else { return }
        // One read of the kernel's CSPRNG for the whole block (glibc's getrandom(2) wrapper
        // is not in Swift's Glibc module).
        buffer.withUnsafeMutableBytes { raw in
            var filled = 0
            while filled < raw.count {
                let n = read(Self.urandom, raw.baseAddress! + filled, raw.count - filled)
                if n > 0 { filled += n } else if errno != EINTR { fatalError("cannot read /dev/urandom: errno \(errno)") }
            }
        }
        used = 0
    }
}
