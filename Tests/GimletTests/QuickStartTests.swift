import Gimlet
import GimletHTTP
import GimletTesting
import Testing

/// The README's Quick Start, verbatim but for `Host.main` and the backend
/// opener (this target links no SQLite or Redis), driven in-process. The
/// whole Quick Start also runs as its own package behind nginx (OwnPackage).
@Suite struct ReadmeQuickStart {
    func quickStartRouter() throws -> Router {
        let environment = ["GIMLET_SECRET": "s3krit-s3krit-s3krit", "GIMLET_BACKEND": "memory:"]
        var router = Router()
        router.use(try SessionMiddleware(SessionConfiguration(
            environment: environment, backends: SessionConfiguration.builtInBackend(url:))))

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
            return .text("cart: " + (request.session["cart"]?.arrayValue?.map(\.text).joined(separator: ", ") ?? ""))
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
        #expect(client.get("/cart/add/ring").text == "cart: ring")
        #expect(client.get("/cart/add/cloak").text == "cart: ring, cloak")
        #expect(client.get("/peek").text == "Frodo dark ring,cloak")
    }
}
