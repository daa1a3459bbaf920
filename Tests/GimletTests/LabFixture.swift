import Foundation
import Gimlet
import GimletHTTP
import GimletTesting
import SessionLabApp

/// session-lab in-process, with a recording backend and a manual clock.
struct Lab {
    static let secret = "test-secret-0123456789abcdef"
    let clock = ManualClock(now: 1_800_000_000)
    let backend: RecordingBackend?
    let client: TestClient

    init(backend useBackend: Bool = true, encryptionKey: String? = nil, secrets: [String] = [Lab.secret],
         secure: Bool = false, configure: (inout SessionConfiguration) -> Void = { _ in }) throws {
        let backend = useBackend ? RecordingBackend(MemoryBackend(clock: clock)) : nil
        self.backend = backend
        var configuration = try SessionConfiguration(secrets: secrets, encryptionKey: encryptionKey, backend: backend,
                                                     clock: clock)
        configure(&configuration)
        let style = try SessionLabApp.Style(environment: ProcessInfo.processInfo.environment)
        client = TestClient(try SessionLabApp.router(configuration, style: style), secure: secure)
    }

    @discardableResult
    func get(_ uri: String) -> TestResponse { client.get(uri) }

    /// Round trips made by `body`.
    func roundTrips(_ body: () -> Void) -> (loads: Int, commits: Int) {
        backend?.reset()
        body()
        return (backend?.loads ?? 0, backend?.commits ?? 0)
    }
}
