import CLZ4

/// LZ4 block compression in independent chunks, because the block API takes
/// 32-bit sizes (at most ~2 GiB) and a snapshot may be bigger.
///
/// Layout: u32 chunk count, then per chunk u32 raw size, u32 compressed size, bytes.
enum LZ4Chunks {
    static let chunkSize = 8 << 20

    static func compress(_ input: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: input.count / 2 + 64)
        let chunks = stride(from: 0, to: input.count, by: chunkSize)
        w.fixed(UInt32(chunks.underestimatedCount))
        input.withUnsafeBytes { all in
            for start in chunks {
                let end = min(start + chunkSize, input.count)
                let raw = UnsafeRawBufferPointer(rebasing: all[start..<end])
                let bound = Int(LZ4_compressBound(Int32(raw.count)))
                var out = [UInt8](repeating: 0, count: bound)
                let written = out.withUnsafeMutableBytes { dst in
                    LZ4_compress_default(
                        raw.baseAddress?.assumingMemoryBound(to: CChar.self),
                        dst.baseAddress?.assumingMemoryBound(to: CChar.self),
                        Int32(raw.count), Int32(bound))
                }
                // Compression into a buffer of compressBound cannot fail for chunks this size.
                precondition(written > 0, "LZ4_compress_default failed")
                w.fixed(UInt32(raw.count))
                w.fixed(UInt32(written))
                w.raw(Array(out[0..<Int(written)]))
            }
        }
        return w.bytes
    }

    /// Nil if the chunks are malformed or do not add up to `expectedSize`.
    static func decompress(_ r: inout ByteReader, expectedSize: Int) -> [UInt8]? {
        // Bound the allocation by what the input could possibly expand to (LZ4 tops out
        // near 255:1), so a corrupt size cannot ask for terabytes.
        guard let count = try? r.fixed(UInt32.self), expectedSize >= 0,
              expectedSize <= Int(count) * chunkSize, expectedSize <= r.remaining * 256
        else { return nil }
        // Not zero-filled first: every byte is written by the decompression or the result is
        // thrown away (a snapshot body is tens of megabytes).
        var ok = true
        let output = [UInt8](unsafeUninitializedCapacity: expectedSize) { buffer, initialized in
            var filled = 0
            for _ in 0..<count {
                guard let rawSize = try? r.fixed(UInt32.self), let compressedSize = try? r.fixed(UInt32.self),
                      Int(rawSize) <= expectedSize - filled, Int(rawSize) <= chunkSize,
                      let compressed = try? r.bytes(Int(compressedSize))
                else { ok = false; break }
                let produced = LZ4_decompress_safe(
                    compressed.baseAddress?.assumingMemoryBound(to: CChar.self),
                    UnsafeMutableRawPointer(buffer.baseAddress!.advanced(by: filled)).assumingMemoryBound(to: CChar.self),
                    Int32(compressed.count), Int32(rawSize))
                guard produced == Int32(rawSize) else { ok = false; break }
                filled += Int(rawSize)
            }
            ok = ok && filled == expectedSize
            initialized = ok ? filled : 0
        }
        return ok ? output : nil
    }
}
