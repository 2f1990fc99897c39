/// Open WebSockets of the current server epoch, per user.
///
/// "Online" (an open, unexpired session) lives in `SessionsView`; `ProjectionSet`
/// combines the two for presence queries.
public struct PresenceView: Projection {
    public static let version = 1

    /// The epoch of the last `ServerStarted` (0 before any).
    public internal(set) var epoch: UInt64 = 0
    public internal(set) var epochStartedAt: Int64?
    /// Users with at least one open socket; no empty sets.
    var sockets: [UInt32: Set<UInt64>] = [:]

    public init() {}

    public func isConnected(_ userId: UInt32) -> Bool { sockets[userId] != nil }

    public func connectedSocketCount(_ userId: UInt32) -> Int { sockets[userId]?.count ?? 0 }

    public func socketIds(of userId: UInt32) -> [UInt64] { (sockets[userId] ?? []).sorted() }

    /// Connected users in ascending id order.
    public var connectedUserIds: [UInt32] { sockets.keys.sorted() }

    public mutating func apply(_ event: Event, seq: UInt64, timestamp: Int64) {
        switch event {
        case .serverStarted(let e):
            // The previous process may have crashed without closing its sockets.
            sockets.removeAll()
            epoch = e.epoch
            epochStartedAt = timestamp
        case .socketConnected(let e):
            sockets[e.userId, default: []].insert(e.socketId)
        case .socketDisconnected(let e):
            sockets[e.userId]?.remove(e.socketId)
            if sockets[e.userId]?.isEmpty == true { sockets[e.userId] = nil }
        default:
            break
        }
    }
}
