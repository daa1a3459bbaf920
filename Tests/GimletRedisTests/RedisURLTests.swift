import Gimlet
import Testing
@testable import GimletRedis

@Suite struct RedisURLs {
    @Test func forms() throws {
        let plain = try RedisSessionBackend.Configuration(url: "redis://127.0.0.1:6380/2?prefix=app:&timeout_ms=250")
        #expect(plain.endpoint == .tcp(host: "127.0.0.1", port: 6380))
        #expect(plain.database == 2 && plain.prefix == "app:" && plain.timeoutMilliseconds == 250)
        let auth = try RedisSessionBackend.Configuration(url: "redis://:p%40ss@redis.internal")
        #expect(auth.password == "p@ss" && auth.username == nil && auth.endpoint == .tcp(host: "redis.internal", port: 6379))
        let acl = try RedisSessionBackend.Configuration(url: "redis://app:secret@h:1/0")
        #expect(acl.username == "app" && acl.password == "secret")
        let unix = try RedisSessionBackend.Configuration(url: "redis+unix:///run/redis/redis.sock?db=3&password=x")
        #expect(unix.endpoint == .unix(path: "/run/redis/redis.sock") && unix.database == 3 && unix.password == "x")
        #expect(try RedisSessionBackend.Configuration(url: "redis://h").prefix == "gimlet:")
    }

    @Test(arguments: ["redis://", "redis://h:0", "redis://h:x", "redis://h/x", "redis://h?nope=1",
                      "redis+unix://relative.sock", "redis+unix://", "rediss://h", "redis://h?timeout_ms=0",
                      // Found by fuzz-urls: an option without a name trapped (index out of range).
                      "redis://h?=", "redis://h/0?db=1&=x", "redis://h?&="])
    func refused(url: String) {
        #expect(throws: SessionConfigurationError.self) { try RedisSessionBackend.Configuration(url: url) }
    }
}
