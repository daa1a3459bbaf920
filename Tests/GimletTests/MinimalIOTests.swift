import Gimlet
import GimletTesting
import Testing

/// DESIGN.md's minimal-I/O rules, counted with the recording backend.
@Suite struct MinimalIO {
    /// A lab whose browser holds server-side keys in both channels and a client-side one.
    func preparedLab() throws -> Lab {
        let lab = try Lab()
        lab.get("/set/p/1?permanent=1&clientside=0")
        lab.get("/set/n/2?permanent=0&clientside=0")
        lab.get("/set/c/3?clientside=1")
        return lab
    }

    @Test func untouchedRequestMakesNoIOAndNoCookie() throws {
        let lab = try preparedLab()
        var response: TestResponse?
        let trips = lab.roundTrips { response = lab.get("/hello") }
        #expect(trips.loads == 0 && trips.commits == 0)
        #expect(response?.setCookies.isEmpty == true)
    }

    @Test func clientSideReadIsFree() throws {
        let lab = try preparedLab()
        var response: TestResponse?
        let trips = lab.roundTrips { response = lab.get("/get/c") }
        #expect(response?.text == "3")
        #expect(trips.loads == 0 && trips.commits == 0)
        #expect(response?.setCookies.isEmpty == true)
    }

    @Test func serverSideReadsOfBothChannelsAreOneRoundTrip() throws {
        let lab = try preparedLab()
        let trips = lab.roundTrips {
            #expect(lab.get("/len").text == "3")
        }
        #expect(trips.loads == 1 && trips.commits == 0)
        guard case .load(let ids)? = lab.backend?.operations.first else {
            Issue.record("expected one load")
            return
        }
        #expect(ids.count == 2, "both channels in the one load")
    }

    @Test func readOnlyRequestWritesNothing() throws {
        let lab = try preparedLab()
        var response: TestResponse?
        let trips = lab.roundTrips { response = lab.get("/get/p") }
        #expect(response?.text == "1")
        #expect(trips.loads == 1 && trips.commits == 0)
        #expect(response?.setCookies.isEmpty == true)
    }

    @Test func blindWriteIsOneRoundTripWithNoRead() throws {
        let lab = try preparedLab()
        let trips = lab.roundTrips {
            #expect(lab.get("/set/p/9?permanent=1&clientside=0").text == "ok")
        }
        #expect(trips.loads == 0 && trips.commits == 1)
        #expect(lab.get("/get/p").text == "9")
    }

    @Test func readModifyWriteIsOnePlusOne() throws {
        let lab = try preparedLab()
        lab.get("/counter")
        let trips = lab.roundTrips {
            #expect(lab.get("/counter").text == "2")
        }
        #expect(trips.loads == 1 && trips.commits == 1)
    }

    @Test func invalidateIsOneCommit() throws {
        let lab = try preparedLab()
        let trips = lab.roundTrips { lab.get("/invalidate") }
        #expect(trips.loads == 0 && trips.commits == 1)
        guard case .commit(let changes)? = lab.backend?.operations.first else {
            Issue.record("expected one commit")
            return
        }
        #expect(changes.count == 2 && changes.allSatisfy(\.removeAll))
    }

    @Test func firstWriteOfANewSessionIsOneCommitAndOneCookie() throws {
        let lab = try Lab()
        var response: TestResponse?
        let trips = lab.roundTrips { response = lab.get("/set/a/1") }
        #expect(trips.loads == 0 && trips.commits == 1)
        #expect(response?.setCookies.count == 1)
    }

    @Test func unchangedServerValueIsNotRewritten() throws {
        let lab = try preparedLab()
        lab.get("/get/p")  // nothing
        let trips = lab.roundTrips { lab.get("/append/list/x") }
        #expect(trips.commits == 1)
    }

    @Test func clientOnlySessionNeverTouchesTheBackend() throws {
        let lab = try Lab()
        lab.get("/set/c/1?clientside=1")
        let trips = lab.roundTrips {
            #expect(lab.get("/get/missing").status == 404)
            #expect(lab.get("/len").text == "1")
            #expect(lab.get("/delete/c").text == "ok")
        }
        #expect(trips.loads == 0 && trips.commits == 0)
    }

    @Test func clientSideSetShadowsAServerCopyWithoutIO() throws {
        let lab = try Lab()
        lab.get("/set/k/server?clientside=0")
        let trips = lab.roundTrips { lab.get("/set/k/client?clientside=1") }
        #expect(trips.loads == 0 && trips.commits == 0)
        #expect(lab.get("/get/k").text == "client")
        #expect(lab.get("/len").text == "1")
        #expect(lab.get("/get/k?clientside=0").status == 404)
        #expect(lab.get("/delete/k").text == "ok")
        #expect(lab.get("/get/k").status == 404, "the shadowed server copy must not come back")
        #expect(lab.get("/len").text == "0")
    }
}
