@testable import Gimlet
import GimletHTTP
import GimletTesting
import Testing

/// Access checks over sessions (issue 31, item 4): what they cost in store
/// round trips, in-process; `AccessCheckTests` runs them behind nginx and Apache.
@Suite struct AccessCheckSessions {
    /// The README's check: a user kept in a client-side key at sign-in.
    @Test func aCheckThatReadsOnlyClientSideKeysMakesNoRoundTrip() throws {
        let backend = RecordingBackend()
        var router = Router()
        router.use(try SessionMiddleware(SessionConfiguration(secrets: [Lab.secret], backend: backend)))
        router.get("/sign-in/:user") { request in
            try request.session.set("user", .string(try request.parameters.require("user")), clientside: true)
            return .text("ok")
        }
        router.authorizer { request in
            guard let user = try request.session.get("user", clientside: true)?.stringValue else {
                return .deny(.unauthorized)
            }
            return .allow(["GIMLET_USER": user])
        }
        let client = TestClient(router)
        #expect(client.get("/-/authorize").status == 401)
        #expect(client.get("/sign-in/frodo").text == "ok")
        backend.reset()
        let allowed = client.get("/-/authorize")
        #expect(allowed.status == 200 && allowed.response.headers["X-Gimlet-User"] == "frodo")
        client.environ["FCGI_ROLE"] = "AUTHORIZER"
        let asApache = client.get("/static/site.css")
        #expect(asApache.status == 200 && asApache.response.headers["Variable-GIMLET_USER"] == "frodo")
        #expect(asApache.setCookies.isEmpty, "a check that changes nothing sends no cookie")
        #expect(backend.roundTrips == 0, "\(backend.operations)")
    }

    /// session-lab's `/-/authorize`: a bound session, as its user.
    @Test func theLabAllowsABoundSessionAsItsUser() throws {
        let lab = try Lab()
        let refused = lab.roundTrips { #expect(lab.get("/-/authorize").status == 401) }
        #expect(refused == (0, 0), "no session, no round trip")
        #expect(lab.get("/login/frodo").text == "ok")
        var allowed: TestResponse?
        let bound = lab.roundTrips { allowed = lab.get("/-/authorize") }
        #expect(allowed?.status == 200 && allowed?.response.headers["X-Gimlet-User"] == "frodo")
        #expect(bound == (1, 0), "one load of the bound session (the revocation check's), no commit")
        _ = lab.get("/invalidate")
        #expect(lab.get("/-/authorize").status == 401)
    }
}

@Suite struct SessionSpans {
    @Test func dbSystemFromTheBackendsName() {
        #expect(SessionTracing.system(of: "sqlite:/var/lib/app/sessions.sqlite") == "sqlite")
        #expect(SessionTracing.system(of: "redis+sentinel://mymaster@10.0.0.5:26379/0") == "redis")
        #expect(SessionTracing.system(of: "redis://127.0.0.1:6379/0") == "redis")
        #expect(SessionTracing.system(of: "postgresql://app@db/sessions") == "postgresql")
        #expect(SessionTracing.system(of: "memory:") == "memory")
    }
}
