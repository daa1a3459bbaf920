import Logging
import Foundation
import Gimlet
import GimletRedis
import GimletSQLite
import Testing

@Suite struct BackendURLs {
    @Test(arguments: ["mongodb://db", "sqlite://host/x.sqlite", "redis://h:99999", "memcached:", "", "sqlite:"])
    func badURLsAreRefusedWithTheAcceptedForms(url: String) {
        let error = #expect(throws: SessionConfigurationError.self) { try SessionBackends(.sqlite, .redis, logger: Logger(label: "test")).open(url: url) }
        #expect(error?.message.contains("sqlite:///abs/path.sqlite") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("redis://") == true)
    }

    @Test func maxConnectionsIsAPositiveNumber() throws {
        let backends = SessionBackends(.sqlite, .redis, logger: Logger(label: "test"))
        for url in ["sqlite:x.sqlite?max_connections=0", "redis://127.0.0.1/0?max_connections=none"] {
            let error = #expect(throws: SessionConfigurationError.self) { try backends.open(url: url) }
            #expect(error?.message.contains("max_connections") == true, "\(error?.message ?? "")")
        }
        #expect(try SQLiteSessionBackend.Configuration(url: "sqlite:x.sqlite?max_connections=3").maxConnections == 3)
        #expect(try SQLiteSessionBackend.Configuration(url: "sqlite:x.sqlite").maxConnections == 64)
        #expect(try RedisSessionBackend.Configuration(url: "redis://h/0?max_connections=2").maxConnections == 2)
    }

    @Test func eachSchemeOpensItsBackend() throws {
        let directory = try TemporaryDirectory()
        #expect(try SessionBackends(.sqlite, .redis, logger: Logger(label: "test")).open(url: "none") == nil)
        #expect(try SessionBackends(.sqlite, .redis, logger: Logger(label: "test")).open(url: "memory:")?.name == "memory:")
        let sqlite = try SessionBackends(.sqlite, .redis, logger: Logger(label: "test")).open(url: "sqlite://" + directory.file("nested/dir/s.sqlite"))
        #expect(sqlite?.name == "sqlite:" + directory.file("nested/dir/s.sqlite"))
        #expect(FileManager.default.fileExists(atPath: directory.file("nested/dir/s.sqlite")))
        let unreachable = #expect(throws: SessionConfigurationError.self) {
            try SessionBackends(.sqlite, .redis, logger: Logger(label: "test")).open(url: "redis://127.0.0.1:1/0?timeout_ms=200")
        }
        #expect(unreachable?.message.contains("cannot start") == true)
    }
}

@Suite struct LinkedBackends {
    @Test func onlyTheListedBackendsAreAcceptedAndListed() throws {
        let redisOnly = SessionBackends(.redis, logger: Logger(label: "test"))
        let error = #expect(throws: SessionConfigurationError.self) {
            try redisOnly.open(url: "sqlite:///tmp/x.sqlite")
        }
        #expect(error?.message.contains("unknown session backend") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("redis+unix://") == true)
        #expect(error?.message.contains("sqlite:///abs/path.sqlite") == false, "lists only what is linked")
        #expect(redisOnly.acceptedForms == "redis://[:password@]host[:port][/db], redis+unix:///path/redis.sock, "
                + "redis+sentinel://host:26379,host:26379/MASTER[/db], memory:, none")
        #expect(try SessionBackends(logger: Logger(label: "test")).open(url: "memory:")?.name == "memory:")
    }

    /// An app without sessions pays for none of their C libraries: the host
    /// no longer opens backends itself.
    @Test func anAppWithoutSessionsLinksNoCryptoSQLiteOrHiredis() throws {
        let ldd = try Tool.path("ldd", package: "libc-bin")
        func libraries(_ binary: String) throws -> String {
            let result = try runToCompletion(ldd, [try Repository.binary(binary)])
            #expect(result.status == 0)
            return String(decoding: result.output, as: UTF8.self)
        }
        let hello = try libraries("hello")
        for library in ["libcrypto", "libsqlite3", "libhiredis"] {
            #expect(!hello.contains(library), "hello links \(library):\n\(hello)")
        }
        #expect(hello.contains("libfcgi"))
        let lab = try libraries("session-lab")
        for library in ["libcrypto", "libsqlite3", "libhiredis"] {
            #expect(lab.contains(library), "session-lab, which has sessions, links \(library)")
        }
    }
}
