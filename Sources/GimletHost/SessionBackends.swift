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
    /// - Throws: `SessionConfigurationError` for an unknown scheme (listing
    ///   the accepted forms) or a malformed URL (saying what is wrong with
    ///   it), or the backend's error if it cannot start.
    public static func open(url: String) throws -> (any SessionBackend)? {
        let configuration: SQLiteSessionBackend.Configuration
        do {
            if url.hasPrefix("sqlite:") {
                configuration = try SQLiteSessionBackend.Configuration(url: url)
            } else if url.hasPrefix("redis://") || url.hasPrefix("redis+unix://") {
                return try RedisSessionBackend(RedisSessionBackend.Configuration(url: url))
            } else if url == "none" || url == "memory:" || url == "memory" {
                return try SessionConfiguration.builtInBackend(url: url)
            } else {
                throw SessionConfigurationError("unknown session backend \(String(reflecting: url))")
            }
        } catch let error as SessionConfigurationError {
            // One list of forms, whatever was wrong.
            throw SessionConfigurationError("\(error.message); accepted: \(acceptedForms)")
        } catch {
            throw SessionConfigurationError("session backend \(url) cannot start: \(error)")
        }
        try prepareDirectory(of: configuration.path)
        do {
            return try SQLiteSessionBackend(configuration)
        } catch {
            throw SessionConfigurationError("session backend \(url) cannot start: \(error)")
        }
    }

    /// The embedded default: `sqlite:` in `GIMLET_DATA_DIR`, or in `data`
    /// under the working directory; always an absolute path, so the log and
    /// error messages say exactly where sessions go.
    public static func defaultURL(environment: [String: String] = ProcessInfoEnvironment.current) -> String {
        var directory = environment["GIMLET_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "data"
        if !directory.hasPrefix("/") {
            directory = FileManager.default.currentDirectoryPath + "/" + directory
        }
        return "sqlite://" + directory + "/sessions.sqlite"
    }

    /// Creates the database's directory if needed, and checks that this
    /// process can write there (SQLite keeps `-wal` and `-shm` files beside it).
    private static func prepareDirectory(of path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        let absolute = parent.hasPrefix("/") ? parent
            : FileManager.default.currentDirectoryPath + (parent.isEmpty ? "" : "/" + parent)
        let advice = "set GIMLET_DATA_DIR (or GIMLET_BACKEND=sqlite:///path/sessions.sqlite) to a directory this user (\(userName())) can write"
        do {
            try FileManager.default.createDirectory(atPath: absolute, withIntermediateDirectories: true)
        } catch {
            throw SessionConfigurationError("cannot create the session directory \(absolute); \(advice)")
        }
        guard FileManager.default.isWritableFile(atPath: absolute) else {
            throw SessionConfigurationError("the session directory \(absolute) is not writable; \(advice)")
        }
    }

    private static func userName() -> String { ProcessInfo.processInfo.userName }
}
