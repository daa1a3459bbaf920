import GimletHTTP
import GimletHost
import GimletTransport
import Logging
import Testing

/// swift-log's bootstrap belongs to the app: the host logs through its own
/// handler and never bootstraps, so an app that bootstraps first can still
/// start the host (a second bootstrap is a crash in swift-log).
@Suite struct HostLogging {
    @Test("an app that bootstrapped swift-log itself starts the host, which hands it its logger")
    func theAppOwnsTheBootstrap() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        // A socket in a directory that does not exist: the host gets past
        // its logging and the app's responder, then fails to bind.
        let configuration = HostConfiguration(transport: .fastCGI(.unix(path: "/nonexistent-gimlet-dir/app.sock")), threads: 1)
        var given: Logger?
        let error = #expect(throws: TransportError.self) {
            try Host.run(configuration: configuration) { logger in
                given = logger
                return Router()
            }
        }
        #expect(error?.description.contains("cannot bind unix:/nonexistent-gimlet-dir/app.sock") == true)
        #expect(given?.label == "gimlet")
    }
}
