import Foundation
import GimletFastCGI
import GimletHTTP
@testable import GimletHost
import GimletSCGI
import Logging
import Testing

/// The wiring of a serving process, built and asked without a process of
/// its own: no signal taken, no request accepted.
@Suite struct ServingProcessWiring {
    static let logger = Logger(label: "wiring-test")

    func app() -> Router {
        var router = Router()
        router.get("/") { _ in .text("the app") }
        return router
    }

    func ask(_ responder: any Responder, _ uri: String) -> (HTTPStatus, String) {
        let response = responder.respond(to: Request(environ: ["REQUEST_METHOD": "GET", "REQUEST_URI": uri]))
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    func socket() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("wiring-\(UUID().uuidString).sock").path
    }

    @Test func withoutTheOperatorsToolsTheAppIsServedAsItIs() throws {
        let path = socket()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let process = try ServingProcess(configuration: HostConfiguration(transport: .fastCGI(.unix(path: path)), threads: 1),
                                         responder: app(), environment: [:], supervised: false, logger: Self.logger)
        #expect(process.served is Router)
        #expect(process.monitor == nil && process.watchdog == nil && process.accessLog == nil)
        #expect(process.server is FastCGIServer)
        #expect(FileManager.default.fileExists(atPath: path), "the socket is open before any request")
    }

    @Test func theStatusPathsStandInFrontOfTheAppOnAScoreboardOfItsOwn() throws {
        let path = socket()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var configuration = HostConfiguration(transport: .scgi(.unix(path: path)), threads: 3)
        configuration.pingPath = "/-/ping"
        configuration.statusPath = "/-/status"
        let process = try ServingProcess(configuration: configuration, responder: app(), environment: [:], supervised: false,
                                         logger: Self.logger)
        #expect(process.server is SCGIServer)
        #expect(ask(process.served, "/-/ping") == (.ok, "pong"))
        #expect(ask(process.served, "/") == (.ok, "the app"))
        let (status, json) = ask(process.served, "/-/status")
        #expect(status == .ok)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let workers = try #require(object["workers"] as? [[String: Any]])
        #expect(workers.count == 1 && workers.first?["pid"] as? Int == Int(getpid()), "this process, in its own slot 0: \(json)")
        #expect(object["idle_threads"] as? Int == 3)
        #expect(process.monitor?.slot == 0)
    }
}
