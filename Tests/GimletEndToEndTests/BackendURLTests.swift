import Foundation
import Gimlet
import GimletHost
import Testing

@Suite struct BackendURLs {
    @Test(arguments: ["mongodb://db", "sqlite://host/x.sqlite", "redis://h:99999", "memcached:", "", "sqlite:"])
    func badURLsAreRefusedWithTheAcceptedForms(url: String) {
        let error = #expect(throws: SessionConfigurationError.self) { try SessionBackends.open(url: url) }
        #expect(error?.message.contains("sqlite:///abs/path.sqlite") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("redis://") == true)
    }

    @Test func eachSchemeOpensItsBackend() throws {
        let directory = try TemporaryDirectory()
        #expect(try SessionBackends.open(url: "none") == nil)
        #expect(try SessionBackends.open(url: "memory:")?.name == "memory:")
        let sqlite = try SessionBackends.open(url: "sqlite://" + directory.file("nested/dir/s.sqlite"))
        #expect(sqlite?.name == "sqlite:" + directory.file("nested/dir/s.sqlite"))
        #expect(FileManager.default.fileExists(atPath: directory.file("nested/dir/s.sqlite")))
        let unreachable = #expect(throws: SessionConfigurationError.self) {
            try SessionBackends.open(url: "redis://127.0.0.1:1/0?timeout_ms=200")
        }
        #expect(unreachable?.message.contains("cannot start") == true)
    }
}
