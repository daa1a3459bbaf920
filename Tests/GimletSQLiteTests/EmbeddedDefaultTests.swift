import Foundation
import Gimlet
import Testing
@testable import GimletSQLite

/// SQLite, the embedded default, is the default of every app that links
/// it: `GIMLET_BACKEND` unset means sessions.sqlite in `GIMLET_DATA_DIR`.
@Suite struct EmbeddedDefault {
    static let secret = "e-0123456789abcdef"

    @Test func anUnsetBackendIsSQLiteInTheDataDirectory() throws {
        let files = try SQLiteFiles()
        let data = files.directory + "/data"
        let configuration = try SessionConfiguration(
            environment: ["GIMLET_SECRET": Self.secret, "GIMLET_DATA_DIR": data],
            backends: SessionBackends(.sqlite, logger: testLogger))
        let backend = try #require(configuration.backend as? SQLiteSessionBackend, "\(String(describing: configuration.backend))")
        #expect(backend.configuration.path == data + "/sessions.sqlite")
        #expect(FileManager.default.fileExists(atPath: data + "/sessions.sqlite"))
        backend.shutdown()
        #expect(SessionBackends(.sqlite, logger: testLogger).embeddedDefaultURL(environment: ["GIMLET_DATA_DIR": "/srv/app"])
                == "sqlite:///srv/app/sessions.sqlite")
    }

    @Test func noStoreOnlyWhenAskedFor() throws {
        let none = try SessionConfiguration(environment: ["GIMLET_SECRET": Self.secret, "GIMLET_BACKEND": "none"],
                                            backends: SessionBackends(.sqlite, logger: testLogger))
        #expect(none.backend == nil)
        // An app that links no embedded store and names none stops, saying what to set.
        let unnamed = #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(environment: ["GIMLET_SECRET": Self.secret], backends: SessionBackends(logger: testLogger))
        }
        #expect(unnamed?.message.contains("GIMLET_BACKEND is not set") == true && unnamed?.message.contains("GIMLET_BACKEND=none") == true,
                "\(String(describing: unnamed))")
        let bare = #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(environment: ["GIMLET_SECRET": Self.secret])
        }
        #expect(bare?.message.contains("GIMLET_BACKEND is not set") == true)
        // A bad secret is still what is said first.
        let secret = #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(environment: ["GIMLET_SECRET": "short"], backends: SessionBackends(logger: testLogger))
        }
        #expect(secret?.message.contains("shorter than 16 bytes") == true && secret?.message.contains("GIMLET_BACKEND") == false,
                "\(String(describing: secret))")
    }

    /// A directory the app cannot write: the error names the variable the operator set.
    @Test func anUnwritablePlaceNamesWhatTheOperatorSet() throws {
        let files = try SQLiteFiles()
        let blocker = files.directory + "/a-file"
        try "x".write(toFile: blocker, atomically: true, encoding: .utf8)
        let viaDataDir = #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(environment: ["GIMLET_SECRET": Self.secret, "GIMLET_DATA_DIR": blocker + "/data"],
                                     backends: SessionBackends(.sqlite, logger: testLogger))
        }
        #expect(viaDataDir?.message.contains("GIMLET_DATA_DIR (\(blocker)/data)") == true, "\(String(describing: viaDataDir))")
        let viaBackend = #expect(throws: SessionConfigurationError.self) {
            try SessionConfiguration(
                environment: ["GIMLET_SECRET": Self.secret, "GIMLET_BACKEND": "sqlite://\(blocker)/s.sqlite", "GIMLET_DATA_DIR": "/tmp"],
                backends: SessionBackends(.sqlite, logger: testLogger))
        }
        #expect(viaBackend?.message.hasSuffix("(GIMLET_BACKEND)") == true, "\(String(describing: viaBackend))")
        #expect(viaBackend?.message.contains("GIMLET_DATA_DIR") == false, "GIMLET_BACKEND was set: \(String(describing: viaBackend))")
    }
}
