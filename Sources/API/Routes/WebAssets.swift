import Crypto
import Foundation
import Hummingbird

/// The web client's files and the OpenAPI document, read once from the API target's resource
/// bundle (`Sources/API/Web`) and served with their type, an ETag and a strict CSP.
struct WebAssets: Sendable {
    /// One file ready to serve.
    struct Asset: Sendable {
        let body: ByteBuffer
        let contentType: String
        let eTag: String
    }

    private let files: [ChatRoute: Asset]

    /// Read when the first responder is built; the bundle is part of the build, so a missing
    /// file is a packaging error worth stopping for.
    static let shared = WebAssets()

    /// Only our own origin: no inline script or style, no framing; sockets to this server.
    static let contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        + "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// The file and media type behind each static route.
    static func source(of route: ChatRoute) -> (file: String, contentType: String)? {
        switch route {
        case .openAPI: ("openapi.json", "application/json; charset=utf-8")
        case .index: ("index.html", "text/html; charset=utf-8")
        case .appScript: ("app.js", "text/javascript; charset=utf-8")
        case .apiScript: ("api.js", "text/javascript; charset=utf-8")
        case .socketScript: ("socket.js", "text/javascript; charset=utf-8")
        case .styles: ("app.css", "text/css; charset=utf-8")
        case .icon: ("icon.svg", "image/svg+xml")
        default: nil
        }
    }

    private init() {
        var files: [ChatRoute: Asset] = [:]
        for route in ChatRoute.allCases {
            guard let (name, type) = Self.source(of: route) else { continue }
            let dot = name.lastIndex(of: ".")!
            guard let url = Bundle.module.url(forResource: String(name[..<dot]), withExtension: String(name[name.index(after: dot)...]),
                                              subdirectory: "Web"),
                  let data = try? Data(contentsOf: url) else {
                fatalError("web asset \(name) is missing from the API resource bundle")
            }
            let digest = SHA256.hash(data: data).prefix(12).map { String(format: "%02x", $0) }.joined()
            files[route] = Asset(body: ByteBuffer(data: data), contentType: type, eTag: "\"\(digest)\"")
        }
        self.files = files
    }

    /// The file for `route`; 304 when the client already holds this version. `no-cache` makes
    /// browsers revalidate, so a new server build is picked up at once, at the cost of a 304.
    func response(for route: ChatRoute, request: Request) -> Response {
        guard let asset = files[route] else { return APIError.notFound.response }
        var headers: HTTPFields = [
            .contentType: asset.contentType,
            .cacheControl: "no-cache",
            .eTag: asset.eTag,
            .contentSecurityPolicy: Self.contentSecurityPolicy,
            .xContentTypeOptions: "nosniff",
        ]
        headers[HTTPFields.Element.Name("Referrer-Policy")!] = "no-referrer"
        if let tags = request.headers[.ifNoneMatch], tags.split(separator: ",").contains(where: {
            $0.trimmingCharacters(in: .whitespaces) == asset.eTag || $0.trimmingCharacters(in: .whitespaces) == "*"
        }) {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
    }

    /// The raw bytes of a static route, for tests.
    func data(for route: ChatRoute) -> ByteBuffer? { files[route]?.body }
}
