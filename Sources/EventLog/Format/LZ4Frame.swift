import CLZ4

/// Standard LZ4 frames (the format `lz4 -dc` reads), with the content checksum on.
enum LZ4Frame {
    /// Compresses `raw` into one frame appended to `out`; returns the frame's length.
    static func compress(_ raw: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) throws -> Int {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        prefs.frameInfo.contentSize = UInt64(raw.count)
        prefs.frameInfo.blockSizeID = LZ4F_max4MB
        prefs.frameInfo.blockMode = LZ4F_blockLinked
        let bound = LZ4F_compressFrameBound(raw.count, &prefs)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: bound))
        let written = out.withUnsafeMutableBytes { dst in
            LZ4F_compressFrame(dst.baseAddress! + start, bound, raw.baseAddress, raw.count, &prefs)
        }
        if LZ4F_isError(written) != 0 {
            out.removeSubrange(start...)
            throw EventLogError.compression(String(cString: LZ4F_getErrorName(written)))
        }
        out.removeSubrange((start + written)...)
        return written
    }
}

/// A reusable LZ4 frame decompressor (one per reading thread: it is not thread-safe).
final class LZ4FrameDecoder {
    private var dctx: OpaquePointer?

    init() {
        var ctx: OpaquePointer?
        _ = LZ4F_createDecompressionContext(&ctx, UInt32(LZ4F_VERSION))
        dctx = ctx
    }

    deinit { LZ4F_freeDecompressionContext(dctx) }

    /// Decompresses exactly one whole frame of `expected` raw bytes into `dst`.
    /// Returns nil with a reason when the frame is damaged, truncated or of another size.
    func decompress(_ frame: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, expected: Int) -> String? {
        LZ4F_resetDecompressionContext(dctx)
        var srcOffset = 0
        var dstOffset = 0
        while true {
            var srcSize = frame.count - srcOffset
            var dstSize = dst.count - dstOffset
            let hint = LZ4F_decompress(
                dctx, dst.baseAddress.map { $0 + dstOffset }, &dstSize,
                frame.baseAddress.map { $0 + srcOffset }, &srcSize, nil)
            if LZ4F_isError(hint) != 0 {
                return "LZ4 frame: " + String(cString: LZ4F_getErrorName(hint))
            }
            srcOffset += srcSize
            dstOffset += dstSize
            if hint == 0 { break }
            if srcSize == 0 && dstSize == 0 {
                return srcOffset >= frame.count ? "LZ4 frame truncated" : "LZ4 frame larger than expected"
            }
        }
        if srcOffset != frame.count { return "LZ4 frame has \(frame.count - srcOffset) trailing bytes" }
        if dstOffset != expected { return "LZ4 frame holds \(dstOffset) bytes, header says \(expected)" }
        return nil
    }
}
