import Foundation
import Gimlet
import GimletTesting
import Testing

/// The original Gimlet's behaviour, through session-lab in-process.
@Suite struct SessionBehaviour {
    // setGetHasDelete runs in process and live: SharedExchange (GimletEndToEndTests).

    @Test func permanentKeysAndCookieAttributes() throws {
        let lab = try Lab()
        let permanent = lab.get("/set/a/1?permanent=1")
        let cookie = try #require(permanent.setCookie("gimlet-p"))
        #expect(cookie.contains("; Max-Age=34560000"))
        #expect(cookie.contains("; HttpOnly"))
        #expect(cookie.contains("; Path=/"))
        #expect(cookie.contains("; SameSite=Lax"))
        #expect(!cookie.contains("Secure"))
        let session = lab.get("/set/b/2?permanent=0")
        let nonpermanent = try #require(session.setCookie("gimlet-n"))
        #expect(!nonpermanent.contains("Max-Age") && !nonpermanent.contains("Expires"))
        #expect(nonpermanent.contains("; HttpOnly"))
        #expect(lab.get("/is_permanent/a").text == "true")
        #expect(lab.get("/is_permanent/b").text == "false")
        #expect(lab.get("/is_permanent/zzz").status == 404)
    }

    @Test func secureUnderHTTPS() throws {
        let lab = try Lab(secure: true)
        #expect(lab.get("/set/a/1?clientside=1").setCookie("gimlet-n")?.contains("; Secure") == true)
    }

    @Test func clientSideKeysNeverReachTheBackend() throws {
        let lab = try Lab()
        let trips = lab.roundTrips {
            #expect(lab.get("/set/frodo/ring?clientside=1").text == "ok")
            #expect(lab.get("/get/frodo").text == "ring")
            #expect(lab.get("/has/frodo").text == "true")
            #expect(lab.get("/set/boromir/111?clientside=1&permanent=1").text == "ok")
            #expect(lab.get("/get/boromir").text == "111")
            #expect(lab.get("/delete/frodo").text == "ok")
        }
        #expect(trips.loads == 0 && trips.commits == 0)
        #expect(lab.backend?.operations.isEmpty == true)
    }

    @Test func movingAKeyBetweenSidesAndChannels() throws {
        let lab = try Lab()
        lab.get("/set/k/v1?clientside=1")
        #expect(lab.get("/get/k?clientside=1").text == "v1")
        lab.get("/set/k/v2?clientside=0")
        #expect(lab.get("/get/k?clientside=1").status == 404)
        #expect(lab.get("/get/k?clientside=0").text == "v2")
        #expect(lab.get("/get/k").text == "v2")
        lab.get("/set/k/v3?clientside=0&permanent=1")
        #expect(lab.get("/get/k?clientside=0&permanent=0").status == 404)
        #expect(lab.get("/get/k?permanent=1&clientside=0").text == "v3")
        #expect(lab.get("/len").text == "1")
        lab.get("/set/k/v4?clientside=1&permanent=0")
        #expect(lab.get("/get/k").text == "v4")
        #expect(lab.get("/is_permanent/k").text == "false")
        #expect(lab.get("/len").text == "1")
    }

    @Test func lenAndIterAcrossChannelsAndSides() throws {
        let lab = try Lab()
        lab.get("/set/frodo/baggins?clientside=1")
        lab.get("/set/gandalf/grey")
        lab.get("/set/sam/gamgee?permanent=1&clientside=1")
        lab.get("/set/pippin/took?permanent=1")
        #expect(lab.get("/len").text == "4")
        #expect(Set(lab.get("/iter").text.split(separator: "\n")) == ["frodo", "gandalf", "sam", "pippin"])
    }

    @Test func idAndTimestamp() throws {
        let lab = try Lab()
        let id = lab.get("/id").text
        #expect(id.count == 32 && id.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(lab.get("/id").text == id, "the id sticks once handed out")
        #expect(lab.get("/timestamp").text == String(lab.clock.now()))
        #expect(lab.get("/time").text == "2027-01-15T08:00:00Z")
    }

    @Test func mutationThroughTheSessionPersists() throws {
        for backend in [true, false] {
            let lab = try Lab(backend: backend)
            lab.get("/append/list/a")
            lab.get("/append/list/b")
            lab.get("/append/list/c")
            #expect(lab.get("/flatten/list").text == "a:b:c")
        }
    }

    @Test func counterIsServerSide() throws {
        let lab = try Lab()
        #expect(lab.get("/counter").text == "1")
        #expect(lab.get("/counter").text == "2")
        #expect(lab.get("/counter").text == "3")
        #expect(lab.get("/get/counter?clientside=0").text == "3")
    }

    @Test func invalidateGivesNewIdsAndRemovesServerData() throws {
        let lab = try Lab()
        lab.get("/set/a/1?permanent=1")
        lab.get("/set/b/2?clientside=1")
        let oldID = lab.get("/id").text
        let response = lab.get("/invalidate")
        #expect(response.text == "ok")
        #expect(response.setCookie("gimlet-p")?.contains("Max-Age=0") == true)
        #expect(lab.get("/get/a").status == 404)
        #expect(lab.get("/get/b").status == 404)
        #expect(lab.get("/id").text != oldID)
        let deleted = lab.backend?.operations.contains {
            if case .commit(let changes) = $0 { changes.contains { $0.removeAll && $0.id.hex == oldID } } else { false }
        }
        #expect(deleted == true, "invalidate deletes the old server-side data")
    }

    @Test func regenerateKeepsDataUnderNewIds() throws {
        let lab = try Lab()
        lab.get("/set/a/1?permanent=1")
        lab.get("/set/b/2?clientside=1&permanent=1")
        lab.get("/set/c/3?permanent=0")
        let oldID = lab.get("/id").text
        #expect(lab.get("/regenerate").text == "ok")
        let newID = lab.get("/id").text
        #expect(newID != oldID)
        #expect(lab.get("/get/a").text == "1")
        #expect(lab.get("/get/b").text == "2")
        #expect(lab.get("/get/c").text == "3")
        // The old id's data is gone: a client replaying the old cookie finds nothing.
        #expect(lab.backend.map { (try? $0.load([SessionID(hex: oldID)!]))?.isEmpty } == true)
    }

    @Test func noBackendMeansClientSideOnly() throws {
        let lab = try Lab(backend: false)
        #expect(lab.get("/set/a/1").text == "ok")
        #expect(lab.get("/get/a").text == "1")
        let refused = lab.get("/set/b/2?clientside=0")
        #expect(refused.status == 400)
        #expect(refused.text.contains("clientside: false needs a session backend"))
        #expect(lab.get("/get/a?clientside=0").status == 400)
        #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(secrets: [Lab.secret], clientsideByDefault: false)
        }
    }

    @Test func encryptionRoundTripsAndHidesPlaintext() throws {
        let lab = try Lab(encryptionKey: String(repeating: "ab", count: 32))
        let response = lab.get("/set/secret/PLAINTEXTVALUE?clientside=1")
        let cookie = try #require(response.setCookie("gimlet-n"))
        #expect(!cookie.contains("PLAINTEXT"))
        let value = try #require(lab.client.cookies["gimlet-n"])
        #expect(!String(decoding: Base64URLForTests.decode(value), as: UTF8.self).contains("PLAINTEXTVALUE"))
        #expect(lab.get("/get/secret").text == "PLAINTEXTVALUE")
    }

    @Test(arguments: ["abc", String(repeating: "a", count: 63), String(repeating: "g", count: 64), "0x" + String(repeating: "a", count: 62)])
    func badEncryptionKeysAreRefused(key: String) {
        let error = #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(secrets: [Lab.secret], encryptionKey: key)
        }
        #expect(error?.message.contains("openssl rand -hex 32") == true)
    }

    @Test func rotationAcceptsTheOldSecretAndReissues() throws {
        let old = try Lab(secrets: ["old-secret-0123456789"])
        old.get("/set/a/1?clientside=1")
        let rotated = try Lab(secrets: ["new-secret-0123456789", "old-secret-0123456789"])
        rotated.client.cookies = old.client.cookies
        let response = rotated.get("/get/a")
        #expect(response.text == "1")
        #expect(response.setCookie("gimlet-n") != nil, "a cookie under a retired secret is re-issued")
        let retired = try Lab(secrets: ["new-secret-0123456789"])
        retired.client.cookies = rotated.client.cookies
        #expect(retired.get("/get/a").text == "1", "the re-issued cookie verifies without the old secret")
    }

    @Test func mangledCookieGivesAFreshSessionNotAnError() throws {
        let lab = try Lab()
        lab.get("/set/a/1?clientside=1")
        lab.client.cookies["gimlet-n"] = (lab.client.cookies["gimlet-n"] ?? "").replacingOccurrences(of: "A", with: "B")
        let response = lab.get("/get/a")
        #expect(response.status == 404)
        #expect(response.setCookie("gimlet-n")?.contains("Max-Age=0") == true, "the bad cookie is cleared")
        let again = lab.get("/set/a/2?clientside=1")
        #expect(again.status == 200)
        #expect(again.setCookie("gimlet-n") != nil)
        #expect(lab.get("/get/a").text == "2")
    }

    @Test func flashQueues() throws {
        let lab = try Lab()
        lab.get("/flash/hello")
        lab.get("/flash/hello")
        lab.get("/flash/once?queue=q&unique=1")
        lab.get("/flash/once?queue=q&unique=1")
        #expect(lab.get("/peek_flash").text == "hello\nhello")
        #expect(lab.get("/pop_flash").text == "hello\nhello")
        #expect(lab.get("/pop_flash").text == "")
        #expect(lab.get("/pop_flash?queue=q").text == "once")
    }

    @Test func csrf() throws {
        let lab = try Lab()
        let token = lab.get("/csrf").text
        #expect(token.count == 40)
        #expect(lab.get("/csrf").text == token)
        let form = Array("csrf_token=\(token)".utf8)
        #expect(lab.client.request("POST", "/csrf_check", body: form, contentType: "application/x-www-form-urlencoded").text == "ok")
        #expect(lab.client.request("POST", "/csrf_check", body: Array("csrf_token=nope".utf8),
                                   contentType: "application/x-www-form-urlencoded").status == 403)
        #expect(lab.client.request("POST", "/csrf_check", headers: ["X-CSRF-Token": token]).text == "ok")
        #expect(lab.client.request("POST", "/csrf_check", body: form, contentType: "application/x-www-form-urlencoded",
                                   headers: ["Origin": "https://evil.example"]).status == 403)
        #expect(lab.client.request("POST", "/csrf_check", body: form, contentType: "application/x-www-form-urlencoded",
                                   headers: ["Origin": "http://localhost"]).text == "ok")
        #expect(lab.client.request("POST", "/csrf_check", body: form, contentType: "application/x-www-form-urlencoded",
                                   headers: ["Sec-Fetch-Site": "cross-site"]).status == 403)
    }

    @Test func cachingHeaders() throws {
        let lab = try Lab()
        let untouched = lab.get("/hello")
        #expect(untouched.response.headers["Vary"] == nil)
        #expect(untouched.setCookies.isEmpty)
        let touched = lab.get("/has/x")
        #expect(touched.response.headers["Vary"] == "Cookie")
        #expect(touched.response.headers["Cache-Control"] == nil)
        let setting = lab.get("/set/a/1?clientside=1")
        #expect(setting.response.headers["Cache-Control"] == "private")
    }

    @Test func oversizedCookieIsAClearError() throws {
        let lab = try Lab()
        let big = String(repeating: "x", count: 2500)
        #expect(lab.get("/set/a/\(big)?clientside=1").status == 200)
        let response = lab.get("/set/b/\(big)?clientside=1")
        #expect(response.status == 500)
        #expect(response.setCookies.isEmpty)
        #expect(lab.get("/get/a").text == big, "the earlier value is still there")
        #expect(lab.get("/set/b/\(big)?clientside=0").status == 200, "server-side has room")
    }

    @Test func absoluteLifetimeEndsAnActiveSession() throws {
        let lab = try Lab { $0.absoluteLifetime = 3600 }
        lab.get("/set/a/1?clientside=1&permanent=1")
        lab.clock.advance(by: 1800)
        #expect(lab.get("/get/a").text == "1")
        lab.clock.advance(by: 1801)
        #expect(lab.get("/get/a").status == 404)
    }

    @Test func serverSideDataExpiresWhenIdle() throws {
        let lab = try Lab()
        lab.get("/set/a/1")  // browser-session channel, server-side: one day idle
        lab.clock.advance(by: 86_000)
        #expect(lab.get("/get/a").text == "1")
        lab.clock.advance(by: 86_401)
        #expect(lab.get("/get/a").status == 404)
    }

    @Test func renewalKeepsAnActiveSessionAlive() throws {
        let lab = try Lab()
        lab.get("/set/a/1")
        for _ in 0..<6 {
            lab.clock.advance(by: 50_000)  // past half the day: due for renewal
            #expect(lab.get("/get/a").text == "1")
        }
    }

    @Test func backendDownIs503AndNeverA2xx() throws {
        let lab = try Lab()
        lab.get("/set/a/1")
        lab.backend?.setFailing(true)
        #expect(lab.get("/get/a").status == 503)
        #expect(lab.get("/set/b/2").status == 503, "a write that cannot be stored is not a 200")
        #expect(lab.get("/set/c/3?clientside=1").status == 200, "client-side keys need no backend")
        #expect(lab.get("/hello").status == 200)
        lab.backend?.setFailing(false)
        #expect(lab.get("/get/a").text == "1")
        #expect(lab.get("/get/b").status == 404)
    }

    @Test func settingsAndEnvironment() throws {
        let settings = try SessionConfiguration(settings: [
            "gimlet.secret": "s1-0123456789abcdef, s2-0123456789abcdef", "gimlet.backend": "memory:",
            "gimlet.permanent": "Yes", "gimlet.clientside": "off", "other": "ignored",
        ])
        #expect(settings.secrets.count == 2)
        #expect(settings.permanentByDefault)
        #expect(settings.clientsideByDefault == false)
        #expect(settings.backend != nil)
        #expect(settings.revocationCheck == .everyRequest)
        let environment = try SessionConfiguration(environment: ["GIMLET_SECRET": "e-0123456789abcdef", "GIMLET_BACKEND": "none",
                                                                 "GIMLET_REVOCATION_CHECK": "next-server-access"])
        #expect(environment.backend == nil && environment.resolvedClientsideDefault)
        #expect(environment.revocationCheck == .nextServerAccess)
        let check = #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(environment: ["GIMLET_SECRET": "e-0123456789abcdef", "GIMLET_REVOCATION_CHECK": "never"])
        }
        #expect(check?.message.contains("GIMLET_REVOCATION_CHECK must be every-request or next-server-access") == true)
        let bad = #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(environment: ["GIMLET_SECRET": "e-0123456789abcdef", "GIMLET_PERMANENT": "maybe"])
        }
        #expect(bad?.message.contains("GIMLET_PERMANENT") == true)
        #expect(throws: SessionConfigurationError.self) { try SessionConfiguration(settings: [:]) }
        #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(settings: ["gimlet.secret": "x-0123456789abcdef", "gimlet.backend": "mongo://"])
        }
    }
}

enum Base64URLForTests {
    static func decode(_ text: String) -> [UInt8] {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Array(Data(base64Encoded: base64) ?? Data())
    }
}
