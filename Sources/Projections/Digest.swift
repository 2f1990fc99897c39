extension ProjectionSet {
    /// A stable fingerprint per view (FNV-1a 64 of its canonical encoding, hex), plus
    /// `"position"` (the last seq). Two rebuilds, or a rebuild and a live server at the
    /// same position, must agree exactly; a differing view names where they diverged.
    public func digest() -> [String: String] {
        var result: [String: String] = ["position": String(lastSeq)]
        for name in Self.viewNames {
            var h = FNV1a64()
            h.update(canonicalBytes(of: name))
            result[name] = h.hex
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
