import Foundation

extension ProjectionSet {
    /// A stable fingerprint per view (FNV-1a 64 of its canonical encoding, hex), plus
    /// `"position"` (the last seq). Two rebuilds, or a rebuild and a live server at the
    /// same position, must agree exactly; a differing view names where they diverged.
    /// The views are encoded and hashed on all cores at once: the conversations view alone is
    /// most of the work, and a rebuild's caller waits for this.
    public func digest() -> [String: String] {
        let names = Self.viewNames
        let hashes = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: names.count)
        defer { hashes.deallocate() }
        let out = UncheckedBuffer(hashes)
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            var h = FNV1a64()
            h.update(canonicalBytes(of: names[i]))
            out.buffer[i] = h.value
        }
        var result: [String: String] = ["position": String(lastSeq)]
        for (i, name) in names.enumerated() {
            var hex: [UInt8] = []
            appendHex(hashes[i], to: &hex)
            result[name] = String(decoding: hex, as: UTF8.self)
        }
        return result
    }

    func canonicalBytes(of view: String) -> [UInt8] {
        switch view {
        case "users": users.canonicalBytes
        case "sessions": sessions.canonicalBytes
        case "presence": presence.canonicalBytes
        case "friendship": friendship.canonicalBytes
        case "conversations": conversations.canonicalBytes
        default: []
        }
    }
}

/// Lets `concurrentPerform`'s iterations write their own slot of one buffer.
private struct UncheckedBuffer: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<UInt64>

    init(_ buffer: UnsafeMutableBufferPointer<UInt64>) { self.buffer = buffer }
}
