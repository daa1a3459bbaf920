@testable import Gimlet
import GimletHTTP
import GimletTesting
import Testing

/// Signing out of a bound session and leaving a message for the next page,
/// as an app's sign-out form does.
@Suite struct SignOutThenFlash {
    static func app() throws -> Router {
        let clock = ManualClock(now: 1_800_000_000)
        let configuration = try SessionConfiguration(secrets: [Lab.secret], backend: MemoryBackend(clock: clock), clock: clock)
        var router = Router()
        router.use(try SessionMiddleware(configuration))
        router.get("/login") { request in
            try request.session.bind(toUser: "ada")
            try request.session.flash("welcome")
            return .text("ok")
        }
        router.get("/logout") { request in
            _ = try request.session.csrfToken()
            request.session.invalidate()
            try request.session.flash("bye")
            return .text("ok")
        }
        router.get("/") { request in
            _ = try request.session.csrfToken()
            return .text((try request.session.boundUser ?? "-") + " " + (try request.session.popFlash()).joined(separator: ","))
        }
        return router
    }

    @Test func theMessageOfASignOutReachesTheNextPage() throws {
        let client = TestClient(try Self.app())
        client.get("/")
        client.get("/login")
        #expect(client.get("/").text == "ada welcome")
        client.get("/logout")
        #expect(client.get("/").text == "- bye")
    }

    /// curl 7.88 (Debian 12) keeps a deleted cookie in its jar when another
    /// `Set-Cookie` follows the deletion in the same response: the signed-out
    /// permanent cookie then came back, bound to a revoked session, and the
    /// session started over without its message (NotesAccounts, through
    /// nginx, found it). Deletions come last.
    @Test func aDeletedCookieComesAfterTheCookiesThatSetValues() throws {
        let client = TestClient(try Self.app())
        client.get("/")
        client.get("/login")
        let signOut = client.get("/logout").setCookies
        #expect(signOut.count == 2, "\(signOut)")
        #expect(signOut.first?.hasPrefix("gimlet-n=AQ") == true, "the new browser-session cookie first: \(signOut)")
        #expect(signOut.last?.hasPrefix("gimlet-p=; Max-Age=0") == true, "the deletion last: \(signOut)")
    }
}
