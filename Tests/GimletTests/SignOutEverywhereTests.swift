@testable import Gimlet
import GimletTesting
import Testing

/// Sessions bound to a user, listed and revoked (session-lab in-process,
/// several browsers on one app and one memory backend).
@Suite struct SignOutEverywhere {
    /// Another browser on the lab's app: its own cookie jar.
    func browser(_ lab: Lab) -> TestClient {
        let client = TestClient(lab.client.responder)
        return client
    }

    /// The body of `uri` fetched by `client`, and the round trips it made.
    func fetch(_ lab: Lab, _ client: TestClient, _ uri: String) -> (text: String, loads: Int, commits: Int) {
        var text = ""
        let trips = lab.roundTrips { text = client.get(uri).text }
        return (text, trips.loads, trips.commits)
    }

    /// `/sessions/:user`'s lines as (id, agent), the current one's id marked `*`.
    func listed(_ client: TestClient, _ user: String) -> [(id: String, agent: String)] {
        let text = client.get("/sessions/" + user).text
        return text.split(separator: "\n").map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return (fields[0], fields.count > 3 ? fields[3] : "")
        }
    }

    @Test func aLoginBindsRegeneratesAndIsListedWithWhatTheAppRecorded() throws {
        let lab = try Lab()
        lab.get("/set/cart/ring?clientside=0")
        let before = lab.get("/id").text
        #expect(lab.client.get("/login/42", headers: ["User-Agent": "Firefox"]).text == "ok")
        let after = lab.get("/id").text
        #expect(after != before, "the login gave the session a new id")
        #expect(lab.get("/get/cart").text == "ring", "and kept its values")
        #expect(lab.get("/whoami").text == "42")

        let phone = browser(lab)
        #expect(phone.get("/login/42", headers: ["User-Agent": "Phone"]).text == "ok")
        let other = browser(lab)
        #expect(other.get("/login/7").text == "ok")

        let sessions = listed(lab.client, "42")
        #expect(sessions.count == 2, "\(sessions)")
        #expect(Set(sessions.map(\.agent)) == ["Firefox", "Phone"])
        #expect(sessions.contains { $0.id == "*" + after && $0.agent == "Firefox" }, "the current one is marked: \(sessions)")
        #expect(listed(lab.client, "7").count == 1)
        #expect(listed(lab.client, "nobody").isEmpty)
    }

    @Test func signingOutEverywhereElseEndsTheOtherSessionsAtTheirNextRequest() throws {
        let lab = try Lab()
        lab.get("/login/42")
        let laptop = browser(lab), phone = browser(lab)
        for client in [laptop, phone] {
            client.get("/login/42")
            client.get("/set/theme/dark?clientside=1")
            client.get("/set/cart/ring?permanent=0&clientside=0")
        }
        let other = browser(lab)
        other.get("/login/7")
        #expect(listed(lab.client, "42").count == 3)

        #expect(lab.get("/logout-everywhere/42?keep_current=1").text == "2", "two sessions revoked")
        #expect(lab.get("/whoami").text == "42", "the current one stays signed in")
        #expect(listed(lab.client, "42").count == 1)
        for client in [laptop, phone] {
            let answer = client.get("/get/theme")
            #expect(answer.status == 404, "a client-side key of a revoked session is gone too (\(answer.text))")
            #expect(answer.setCookies.contains { $0.hasPrefix("gimlet-p=;") }, "its cookies are cleared: \(answer.setCookies)")
            #expect(client.get("/get/cart").status == 404)
            #expect(client.get("/whoami").status == 404)
        }
        #expect(other.get("/whoami").text == "7", "another user's session is untouched")

        #expect(lab.get("/logout-everywhere/42").text == "1", "the last one, without keeping the current")
        #expect(lab.get("/whoami").status == 404)
        #expect(listed(lab.client, "42").isEmpty)
    }

    /// The default check costs a bound session one load per request, even
    /// one that reads only client-side keys or none (it runs before the
    /// handler); an unbound session nothing.
    @Test func theEveryRequestCheckCostsBoundSessionsOneLoad() throws {
        let lab = try Lab()
        lab.get("/set/theme/dark?clientside=1")
        #expect(fetch(lab, lab.client, "/get/theme") == ("dark", 0, 0), "unbound: free")
        #expect(fetch(lab, lab.client, "/hello") == ("hello", 0, 0), "unbound, untouched: free")
        lab.get("/login/42")
        #expect(fetch(lab, lab.client, "/get/theme") == ("dark", 1, 0), "bound: one load")
        #expect(fetch(lab, lab.client, "/hello") == ("hello", 1, 0), "bound, untouched: checked before the handler")
        let hello = lab.client.get("/hello")
        #expect(hello.setCookies.isEmpty && hello.response.headers["Vary"] == nil,
                "a check the handler did not ask for sends no cookie and no Vary: \(hello.setCookies)")
    }

    /// A user has at most `maximumSessionsPerUser` sessions: a login past
    /// it signs the least recently seen out, and the index stays that size
    /// however many logins come (issue 29: it grew with every sign-in).
    @Test func aLoginPastTheCapSignsTheOldestOut() throws {
        let lab = try Lab { $0.maximumSessionsPerUser = 3 }
        let browsers = (0..<6).map { _ in browser(lab) }
        for (index, client) in browsers.enumerated() {
            #expect(client.get("/login/42", headers: ["User-Agent": "b\(index)"]).text == "ok")
            lab.clock.advance(by: 10)
        }
        #expect(listed(browsers[5], "42").map(\.agent).sorted() == ["b3", "b4", "b5"], "the three most recently seen")
        for client in browsers.prefix(3) { #expect(client.get("/whoami").status == 404, "signed out") }
        for client in browsers.suffix(3) { #expect(client.get("/whoami").text == "42") }
        // An old session seen recently is kept over a newer idle one.
        lab.clock.advance(by: 2 * 86_400)  // due for renewal: its visit refreshes last seen
        #expect(browsers[3].get("/set/x/1?clientside=0").text == "ok")
        lab.clock.advance(by: 10)
        let late = browser(lab)
        #expect(late.get("/login/42").text == "ok")
        #expect(browsers[3].get("/whoami").text == "42", "seen lately: kept")
        #expect(browsers[4].get("/whoami").status == 404, "the least recently seen went")
        let index = try #require(try lab.backend?.load([SessionRegistry.indexID(ofUser: "42")]).values.first)
        #expect(index.values.filter { $0 == "p" }.count == 3, "three sessions in the index, not one per login: \(index)")
        #expect(index.count == 4, "and the browser-session channel b3 opened since: \(index)")
    }

    @Test func atNextServerAccessARevokedSessionEndsOnlyWhenItReadsTheServer() throws {
        let lab = try Lab { $0.revocationCheck = .nextServerAccess }
        let phone = browser(lab)
        phone.get("/login/42")
        phone.get("/set/theme/dark?clientside=1")
        phone.get("/set/cart/ring?clientside=0")
        #expect(fetch(lab, phone, "/get/theme") == ("dark", 0, 0), "bound, client-side: free")
        lab.get("/logout-everywhere/42")
        #expect(phone.get("/get/theme").text == "dark", "a client-side read is not checked")
        #expect(phone.get("/get/cart").status == 404, "a server-side read finds the session revoked")
        #expect(phone.get("/get/theme").status == 404, "and it started over, client-side keys too")
        #expect(phone.get("/whoami").status == 404)
    }

    /// Under next-server-access a bound session that only ever uses
    /// client-side keys never loads its data, yet it is renewed daily: each
    /// renewal loads it once, so the user's index is renewed with it and
    /// the session stays listed (and revocable) past the index's 400 days.
    @Test func atNextServerAccessARenewedSessionStaysIndexed() throws {
        let lab = try Lab { $0.revocationCheck = .nextServerAccess }
        lab.get("/login/42")
        lab.get("/set/theme/dark?permanent=1&clientside=1")
        for _ in 0..<410 {
            lab.clock.advance(by: 86_400 + 1)
            #expect(lab.get("/get/theme").text == "dark")
        }
        #expect(listed(lab.client, "42").count == 1, "still listed after 410 days of use")
        let phone = browser(lab)
        phone.get("/login/42")
        #expect(phone.get("/logout-everywhere/42?keep_current=1").text == "1", "and revocable")
        #expect(lab.get("/get/theme").text == "dark", "next-server-access: a client-side read is not checked")
        lab.clock.advance(by: 86_400 + 1)
        #expect(lab.get("/get/theme").status == 404, "its next renewal loads it and finds it revoked")
    }

    /// The cookies of two sessions together (another's browser-session
    /// cookie next to one's own permanent one) are no session: it starts
    /// over, and the data of both cookies' channels is deleted. The session
    /// the cookie was taken from keeps its login (its permanent channel),
    /// and its browser-session channel starts over, as an expired one.
    @Test func aBoundChannelWithAnotherSessionsCookieStartsOver() throws {
        let lab = try Lab()
        let victim = browser(lab), thief = browser(lab)
        victim.get("/login/42")
        victim.get("/set/secret/s3?permanent=0&clientside=1")
        thief.get("/login/666")
        thief.cookies["gimlet-n"] = victim.cookies["gimlet-n"]
        #expect(thief.get("/get/secret").status == 404)
        #expect(thief.get("/whoami").status == 404, "the mixed session started over")
        #expect(victim.get("/whoami").text == "42", "the session the cookie came from keeps its login")
        #expect(victim.get("/get/secret").status == 404, "but not the taken channel's data")
        #expect(thief.get("/login/666").text == "ok" && thief.get("/whoami").text == "666", "a new login works")
    }

    @Test func lastSeenFollowsTheSessionsCommitsAndExpiredSessionsAreNotListed() throws {
        let lab = try Lab()
        lab.get("/login/42")
        let created = lab.clock.now()
        lab.clock.advance(by: 600)
        lab.get("/set/k/v?permanent=1&clientside=0")
        let line = lab.get("/sessions/42").text.split(separator: "\t")
        #expect(line.count >= 3 && line[1] == "\(created)" && line[2] == "\(created + 600)", "\(line)")
        lab.get("/invalidate")
        #expect(listed(lab.client, "42").isEmpty, "a session signed out is not listed")

        let phone = browser(lab)
        phone.get("/login/42")
        lab.clock.advance(by: 401 * 86_400)
        #expect(listed(lab.client, "42").isEmpty, "an expired session is not listed")
    }

    /// The browser-session channel's data lives a day idle, the permanent
    /// one's 400: a browser left open past a day keeps its login, and only
    /// the browser-session channel starts over, as it would unbound.
    @Test func anExpiredBrowserSessionChannelIsNoRevocation() throws {
        let lab = try Lab()
        lab.get("/login/42")
        lab.get("/set/cart/ring?permanent=0&clientside=0")
        lab.get("/set/theme/dark?permanent=0&clientside=1")
        lab.get("/set/name/frodo?permanent=1&clientside=1")
        lab.clock.advance(by: 86_400 + 60)
        #expect(lab.get("/whoami").text == "42", "still signed in")
        #expect(lab.get("/get/name").text == "frodo", "the permanent channel is intact")
        #expect(lab.get("/get/cart").status == 404, "the browser-session channel expired")
        #expect(lab.get("/get/theme").status == 404, "and started over, client-side keys too")
        lab.get("/set/cart/cloak?permanent=0&clientside=0")
        #expect(lab.get("/get/cart").text == "cloak", "it is used again")
        #expect(lab.get("/logout-everywhere/42").text == "1")
        #expect(lab.get("/get/name").status == 404 && lab.get("/get/cart").status == 404)
    }

    @Test func bindingNeedsABackend() throws {
        let lab = try Lab(backend: false)
        #expect(lab.get("/login/42").status == 400)
    }
}
