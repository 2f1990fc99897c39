import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import API

/// The web client's files: served with the right headers, and loading nothing from elsewhere.
@Suite struct WebPageTests {
    /// Every `src="…"`, `href="…"` and `from "…"` / `import "…"` target in a file.
    static func references(in text: String) -> [String] {
        let pattern = #"(?:src|href)\s*=\s*"([^"]*)"|(?:from|import)\s*"([^"]*)""#
        let regex = try! NSRegularExpression(pattern: pattern)
        let range = NSRange(text.startIndex..., in: text)
        return regex.matches(in: text, range: range).compactMap { match in
            (1...2).lazy.compactMap { Range(match.range(at: $0), in: text).map { String(text[$0]) } }.first
        }
    }

    @Test func pageAndAssetsAreSameOriginWithAStrictPolicy() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.router) { client in
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let csp = page.headers[.contentSecurityPolicy] ?? ""
            #expect(csp.contains("default-src 'self'") && csp.contains("connect-src 'self' ws: wss:"))
            #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"))
            #expect(page.headers[.cacheControl] == "no-cache")
            let html = String(buffer: page.body)
            #expect(!html.contains("<script>") && !html.contains(" style=") && !html.contains(" onclick="), "inline script or style")

            // Follow every reference from the page and from each script: all same-origin and served.
            var queue = Self.references(in: html)
            var seen: Set<String> = []
            let types = ["js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"]
            while let ref = queue.popLast() {
                guard seen.insert(ref).inserted else { continue }
                #expect(ref.hasPrefix("/") && !ref.hasPrefix("//"), "\(ref) is not same-origin")
                let asset = try await client.execute(uri: ref, method: .get)
                #expect(asset.status == .ok, "\(ref) answered \(asset.status)")
                let ext = String(ref.split(separator: ".").last ?? "")
                #expect(asset.headers[.contentType]?.hasPrefix(types[ext] ?? "?") == true, "\(ref): \(asset.headers[.contentType] ?? "")")
                #expect(asset.headers[.contentSecurityPolicy] == csp)
                let text = String(buffer: asset.body)
                if ext == "js" || ext == "css" {
                    #expect(!text.contains("http://") && !text.contains("https://"), "\(ref) names an outside URL")
                }
                if ext == "js" { queue += Self.references(in: text).filter { $0.hasPrefix("/") || $0.hasPrefix(".") || $0.contains(":") } }
            }
            #expect(seen.isSuperset(of: ["/web/app.js", "/web/api.js", "/web/socket.js", "/web/app.css", "/web/icon.svg"]))
            #expect(!html.contains("http://") && !html.contains("https://"))
            // Every asset route the server has is one the page actually uses.
            let assetRoutes = ChatRoute.allCases.filter { $0.template.hasPrefix("/web/") }.map(\.template)
            #expect(Set(assetRoutes) == seen)
        }
        await service.shutdown()
    }

    @Test func theStaticFilesAnswerWhileTheLogReplays() async throws {
        let data = TestData()
        let service = try await data.service(start: false)
        try await service.application().test(.router) { client in
            for route in ChatRoute.allCases where WebAssets.source(of: route) != nil {
                #expect(try await client.execute(uri: route.template, method: .get).status == .ok, "\(route.template)")
            }
            let api = try await client.execute(uri: "/api/online-users/", method: .get)
            #expect(api.status == .serviceUnavailable && object(api)["code"] as? String == "replaying")
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .serviceUnavailable)
        }
    }

    @Test func revalidationAnswers304AndTheDocumentIsJSON() async throws {
        let data = TestData()
        let service = try await data.service()
        try await service.application().test(.router) { client in
            let first = try await client.execute(uri: "/web/app.js", method: .get)
            let tag = try #require(first.headers[.eTag])
            let again = try await client.execute(uri: "/web/app.js", method: .get, headers: [.ifNoneMatch: tag])
            #expect(again.status == .notModified && again.body.readableBytes == 0)
            let changed = try await client.execute(uri: "/web/app.js", method: .get, headers: [.ifNoneMatch: "\"other\""])
            #expect(changed.status == .ok)

            let doc = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(doc.status == .ok && doc.headers[.contentType] == "application/json; charset=utf-8")
            let parsed = try JSONSerialization.jsonObject(with: Data(buffer: doc.body)) as? [String: Any]
            #expect((parsed?["openapi"] as? String)?.hasPrefix("3.1.") == true)
            #expect(try await client.execute(uri: "/openapi.json/", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/", method: .post).status == .methodNotAllowed)
            #expect(try await client.execute(uri: "/web/missing.js", method: .get).status == .notFound)
        }
        await service.shutdown()
    }
}
