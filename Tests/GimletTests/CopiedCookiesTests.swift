import Gimlet
import GimletTesting
import Testing

/// What a copy of a browser's cookies can still do after sign-out and after
/// revocation, one test per row of the README's "What a copied cookie can
/// still do" (session-lab in-process, a manual clock).
@Suite struct CopiedCookies {
    static let day: Int64 = 86_400

    /// A second client holding a copy of `client`'s cookies as they are now.
    func copy(of client: TestClient) -> TestClient {
        let thief = TestClient(client.responder)
        thief.cookies = client.cookies
        return thief
    }

    /// Ends user 42's session in `lab.client`: signs it out, or revokes it
    /// from another browser of the same user ("sign out everywhere else").
    func signOut(_ lab: Lab, everywhereElse: Bool) {
        if everywhereElse {
            let laptop = TestClient(lab.client.responder)
            #expect(laptop.get("/login/42").text == "ok")
            #expect(laptop.get("/logout-everywhere/42?keep_current=1").text == "1")
        } else {
            #expect(lab.get("/invalidate").text == "ok")
        }
    }

    @Test func withoutABackendACopyKeepsItsValuesUntilItsIdleTTLRunsOut() throws {
        let lab = try Lab(backend: false)
        lab.get("/set/elf/legolas?permanent=0")
        lab.get("/set/ring/one?permanent=1")
        let thief = copy(of: lab.client)
        #expect(lab.get("/invalidate").text == "ok")
        #expect(thief.get("/get/elf").text == "legolas", "sign-out cannot reach a copy when nothing is server-side")
        lab.clock.advance(by: Self.day - 1)
        #expect(copy(of: thief).get("/get/elf").text == "legolas", "idle for less than session_ttl: still counts")
        lab.clock.advance(by: 1)
        #expect(thief.get("/get/elf").status == 404, "idle for session_ttl: the browser-session value is gone")
        #expect(thief.get("/get/ring").text == "one", "the permanent channel lives permanent_ttl")
        let idle = copy(of: thief)
        lab.clock.advance(by: 400 * Self.day)
        #expect(idle.get("/get/ring").status == 404, "idle for permanent_ttl: gone too")
    }

    @Test func unboundTheServerSideValuesGoAtSignOutTheClientSideOnesAtTheIdleTTL() throws {
        let lab = try Lab()
        lab.get("/set/cart/ring?clientside=0&permanent=0")
        lab.get("/set/theme/dark?clientside=1&permanent=0")
        let thief = copy(of: lab.client)
        #expect(lab.get("/invalidate").text == "ok")
        #expect(thief.get("/get/cart").status == 404, "server-side values are deleted at sign-out")
        #expect(thief.get("/get/theme").text == "dark", "client-side values still count")
        lab.clock.advance(by: Self.day)
        #expect(thief.get("/get/theme").status == 404, "until the copy has been idle for session_ttl")
    }

    @Test(arguments: [false, true])
    func boundAndCheckedEveryRequestACopyIsOutAtItsNextRequest(revokedElsewhere: Bool) throws {
        let lab = try Lab()
        lab.get("/login/42")
        lab.get("/set/theme/dark?clientside=1")
        lab.get("/set/cart/ring?clientside=0")
        let thief = copy(of: lab.client)
        signOut(lab, everywhereElse: revokedElsewhere)
        #expect(thief.get("/get/theme").status == 404, "not even a client-side value")
        #expect(thief.get("/whoami").status == 404)
    }

    @Test(arguments: [false, true])
    func boundAndCheckedAtServerAccessACopyKeepsClientSideValuesUntilAServerReadOrItsRenewal(revokedElsewhere: Bool) throws {
        let lab = try Lab { $0.revocationCheck = .nextServerAccess }
        lab.get("/login/42")
        lab.get("/set/theme/dark?clientside=1&permanent=1")
        lab.get("/set/cart/ring?clientside=0")
        let reader = copy(of: lab.client), waiter = copy(of: lab.client)
        signOut(lab, everywhereElse: revokedElsewhere)
        #expect(reader.get("/get/theme").text == "dark", "client-side values still count")
        #expect(reader.get("/get/cart").status == 404, "a server-side read finds the binding gone")
        #expect(reader.get("/get/theme").status == 404, "and from then on nothing counts")

        #expect(waiter.get("/get/theme").text == "dark")
        lab.clock.advance(by: Self.day)  // renew_after: the permanent channel's renewal is due
        #expect(waiter.get("/get/theme").status == 404, "its renewal loads, and finds the binding gone")
    }
}
