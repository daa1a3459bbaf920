import Gimlet
import GimletHTTP
import GimletTesting
import Synchronization
import Testing

/// Compare-and-set of keys a request read and wrote, and what the middleware
/// does when another request changed them first.
@Suite struct ReadModifyWrite {
    /// An app whose handlers read `n` and write `n + 1`; on its first run,
    /// `/race` lets "another request" change `n` in between.
    final class App {
        let backend = RecordingBackend()
        let runs = Runs()
        let client: TestClient

        init() throws {
            var router = Router()
            router.use(try SessionMiddleware(SessionConfiguration(
                secrets: ["read-modify-write-secret-0123"], backend: backend, permanentByDefault: true)))
            let backend = backend
            let runs = runs
            let increment: RequestHandler = { request in
                let run = runs.count.add(1, ordering: .relaxed).newValue
                let n = (try request.session.get("n")?.intValue ?? 0) + 1
                if run == 1, request.query["race"] == "1" {
                    // A concurrent request of the same session commits n = 100 now.
                    let id = try #require(SessionID(hex: request.query["id"] ?? ""))
                    try backend.commit([SessionChange(id: id, upserts: ["n": 100], timeToLive: 3600)])
                }
                request.session["n"] = .int(n)
                return .text(String(n))
            }
            router.get("/race", increment)
            router.post("/race", increment)
            router.post("/race/rerun", options: .rerunOnSessionConflict, increment)
            router.get("/race/never", options: .neverRerun, increment)
            router.get("/set/:key") { request in
                request.session[request.parameters["key"] ?? ""] = "blind"
                return .text("ok")
            }
            router.get("/get/:key") { request in .text(request.session[request.parameters["key"] ?? ""]?.text ?? "-") }
            router.get("/id") { request in .text(request.session.id) }
            client = TestClient(router)
        }

        /// A session holding n = 1, and its permanent channel's id.
        func prepared() -> String {
            let id = client.get("/id").text
            _ = client.get("/race")
            backend.reset()
            runs.count.store(0, ordering: .relaxed)
            return id
        }

        var lastCommit: [SessionChange]? {
            backend.operations.compactMap { if case .commit(let changes) = $0 { changes } else { nil } }.last
        }
    }

    /// How often the handler ran.
    final class Runs: Sendable {
        let count = Atomic<Int>(0)
    }

    @Test func aReadThenWrittenKeyIsCommittedWithWhatWasRead() throws {
        let app = try App()
        _ = app.prepared()
        #expect(app.client.get("/race").text == "2")
        #expect(app.lastCommit?.first?.expected == ["n": .value(1)])
        #expect(app.backend.roundTrips == 2, "one load, one commit: the check costs no round trip")
    }

    @Test func blindWritesAndReadsCarryNoExpectation() throws {
        let app = try App()
        _ = app.prepared()
        #expect(app.client.get("/set/other").text == "ok")
        #expect(app.lastCommit?.allSatisfy { $0.expected.isEmpty } == true, "a blind write: \(app.lastCommit ?? [])")
        app.backend.reset()
        #expect(app.client.get("/get/n").text == "1")
        #expect(app.backend.commits == 0, "a read writes nothing")
    }

    @Test func aNewSessionHasNothingToCompare() throws {
        let app = try App()
        #expect(app.client.get("/race").text == "1")
        #expect(app.lastCommit?.allSatisfy { $0.expected.isEmpty } == true, "fresh ids: nobody else knows them")
    }

    @Test func aConflictingGetRunsAgainOnTheStoredValue() throws {
        let app = try App()
        let id = app.prepared()
        let response = app.client.get("/race?race=1&id=\(id)")
        #expect(response.status == 200)
        #expect(response.text == "101", "the re-run read the concurrent request's 100")
        #expect(app.runs.count.load(ordering: .relaxed) == 2)
        #expect(app.client.get("/get/n").text == "101")
    }

    @Test func aConflictingPostAnswers409AndStoresNothing() throws {
        let app = try App()
        let id = app.prepared()
        let response = app.client.request("POST", "/race?race=1&id=\(id)")
        #expect(response.status == 409)
        #expect(response.response.headers["Cache-Control"] == "no-store")
        #expect(app.runs.count.load(ordering: .relaxed) == 1, "a POST is not repeated")
        #expect(app.client.get("/get/n").text == "100", "the concurrent change stands")
    }

    @Test func aPostRouteMayAllowReruns() throws {
        let app = try App()
        let id = app.prepared()
        #expect(app.client.request("POST", "/race/rerun?race=1&id=\(id)").text == "101")
        #expect(app.runs.count.load(ordering: .relaxed) == 2)
    }

    @Test func aGetRouteMayForbidReruns() throws {
        let app = try App()
        let id = app.prepared()
        #expect(app.client.get("/race/never?race=1&id=\(id)").status == 409)
        #expect(app.runs.count.load(ordering: .relaxed) == 1)
        #expect(app.client.get("/get/n").text == "100")
    }
}
