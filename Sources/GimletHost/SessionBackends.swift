import Foundation
import Gimlet
import GimletRedis
import GimletSQLite

/// Opens a session backend from its URL: every backend Gimlet ships.
///
/// | URL | backend |
/// | --- | --- |
/// | `sqlite:///abs/path.sqlite`, `sqlite:relative.sqlite` (`?busy_timeout_ms=&synchronous=&sweep_interval=`) | ``SQLiteSessionBackend`` |
/// | `redis://[[user]:password@]host[:port][/db][?prefix=&timeout_ms=]` | ``RedisSessionBackend`` |
/// | `redis+unix:///path/redis.sock[?db=&password=&prefix=&timeout_ms=]` | ``RedisSessionBackend`` |
/// | `memory:` | `MemoryBackend` (one process only) |
/// | `none` | no backend: every key client-side |
///
/// ```swift
/// let sessions = try SessionConfiguration(environment: env, backends: SessionBackends.open(url:))
/// ```
public enum SessionBackends {
    /// The accepted forms, for error messages.
    public static let acceptedForms =
        "sqlite:///abs/path.sqlite, sqlite:relative.sqlite, redis://[:password@]host[:port][/db], redis+unix:///path/redis.sock, memory:, none"

    /// The backend `url` names (`nil` for `none`).
    ///
    /// - Throws: `SessionConfigurationError` for an unknown scheme or a malformed URL
    ///   (listing the accepted forms), or the backend's error if it cannot start.
    public static func open(url: String) throws -> (any SessionBackend)? {
        do {
            if url.hasPrefix("sqlite:") {
                let configuration = try SQLiteSessionBackend.Configuration(url: url)
                try createParentDirectory(of: configuration.path)
                return try SQLiteSessionBackend(configuration)
            }
            if url.hasPrefix("redis://") || url.hasPrefix("redis+unix://") {
                return try RedisSessionBackend(RedisSessionBackend.Configuration(url: url))
            }
            return try SessionConfiguration.builtInBackend(url: url)
        } catch let error as SessionConfigurationError {
            throw SessionConfigurationError("\(error.message). Accepted: \(acceptedForms)")
        } catch {
            throw SessionConfigurationError("session backend \(url) cannot start: \(error)")
        }
    }

    /// The embedded default: `sqlite:` in `GIMLET_DATA_DIR` (default `./data`).
    public static func defaultURL(environment: [String: String] = ProcessInfoEnvironment.current) -> String {
        let directory = environment["GIMLET_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "data"
        return "sqlite:" + directory + "/sessions.sqlite"
    }

    private static func createParentDirectory(of path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty else { return }
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
    }
}
