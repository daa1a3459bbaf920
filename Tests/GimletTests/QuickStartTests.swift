import Gimlet
import GimletHTTP
import GimletTesting
import Testing

/// The README's Quick Start, verbatim but for `Host.main`, driven in-process.
@Suite struct ReadmeQuickStart {
    func quickStartRouter() throws -> Router {
        var router = Router()
        router.use(try SessionMiddleware(SessionConfiguration(
            secrets: ["s3krit-s3krit-s3krit"],      // use `openssl rand -hex 32`, from GIMLET_SECRET
            backend: MemoryBackend())))             // server-side keys; omit for cookies only

        router.get("/login/:name") { request in
            let session = request.session
            session["user"] = .string(request.parameters["name"] ?? "")   // stored with the defaults
            try session.set("theme", "dark", permanent: true, clientside: true)
            try session.regenerateID()                                     // new ids after login
            return .text("hello \(session["user"]?.text ?? "")")
        }

        router.get("/cart/add/:item") { request in
            if request.session["cart"] == nil { request.session["cart"] = [] }
            request.session["cart"]?.append(.string(request.parameters["item"] ?? ""))  // stored, no save() needed
            return .text("ok")
        }
        return router
    }

    @Test func itWorksAsWritten() throws {
        var router = try quickStartRouter()
        router.get("/peek") { request in
            .text("\(request.session["user"]?.text ?? "") \(request.session["theme"]?.text ?? "") "
                + (request.session["cart"]?.arrayValue?.map(\.text).joined(separator: ",") ?? ""))
        }
        let client = TestClient(router)
        #expect(client.get("/login/Frodo").text == "hello Frodo")
        #expect(client.get("/cart/add/ring").text == "ok")
        #expect(client.get("/cart/add/cloak").text == "ok")
        #expect(client.get("/peek").text == "Frodo dark ring,cloak")
    }
}
