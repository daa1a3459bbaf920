import Foundation
import Gimlet
import GimletBackendSupport

extension SQLiteSessionBackend.Configuration {
    /// Reads a backend URL: `sqlite:///absolute/path.sqlite` or
    /// `sqlite:relative/path.sqlite`, with optional `?busy_timeout_ms=5000`,
    /// `&synchronous=full|normal` and `&sweep_interval=300`.
    ///
    /// - Throws: `SessionConfigurationError` saying which part is wrong.
    public init(url: String, clock: any SessionClock = SystemClock()) throws {
        guard url.hasPrefix("sqlite:") else {
            throw SessionConfigurationError("\(String(reflecting: url)) is not a sqlite: URL")
        }
        var rest = url.dropFirst("sqlite:".count)
        var query: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        let path: String
        if rest.hasPrefix("//") {
            let afterSlashes = rest.dropFirst(2)
            guard afterSlashes.hasPrefix("/") else {
                throw SessionConfigurationError("sqlite URL \(String(reflecting: url)) names a host; use sqlite:///absolute/path or sqlite:relative/path")
            }
            path = String(afterSlashes)
        } else {
            path = String(rest)
        }
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw SessionConfigurationError("sqlite URL \(String(reflecting: url)) has no file name")
        }
        self.init(path: path, clock: clock)
        for (name, value) in try BackendURLQuery.options(query, url: url) {
            switch name {
            case "busy_timeout_ms":
                guard let number = Int32(value), number >= 0 else {
                    throw SessionConfigurationError("busy_timeout_ms in \(String(reflecting: url)) must be milliseconds")
                }
                busyTimeoutMilliseconds = number
            case "synchronous":
                guard value == "full" || value == "normal" else {
                    throw SessionConfigurationError("synchronous in \(String(reflecting: url)) must be full or normal")
                }
                synchronousFull = value == "full"
            case "sweep_interval":
                guard let number = Int(value), number >= 0 else {
                    throw SessionConfigurationError("sweep_interval in \(String(reflecting: url)) must be seconds")
                }
                sweepInterval = number
            case "max_connections":
                guard let number = Int(value), number > 0 else {
                    throw SessionConfigurationError("max_connections in \(String(reflecting: url)) must be a positive number")
                }
                maxConnections = number
            default:
                throw SessionConfigurationError("unknown option \(String(reflecting: name)) in \(String(reflecting: url)); known: busy_timeout_ms, synchronous, sweep_interval, max_connections")
            }
        }
    }
}

extension SessionBackendOpener {
    /// `sqlite:///abs/path.sqlite` and `sqlite:relative.sqlite`, with
    /// `?busy_timeout_ms=&synchronous=&sweep_interval=`: ``SQLiteSessionBackend``.
    ///
    /// Starting one creates the file's directory if needed, and checks that
    /// this process can write there.
    public static var sqlite: SessionBackendOpener {
        SessionBackendOpener(
            schemes: ["sqlite:"], forms: ["sqlite:///abs/path.sqlite", "sqlite:relative.sqlite"],
            configuration: { try SQLiteSessionBackend.Configuration(url: $0) },
            start: { configuration, logger in
                try SQLiteSessionBackend.prepareDirectory(of: configuration.path)
                return try SQLiteSessionBackend(configuration, logger: logger)
            },
            embeddedDefault: { SQLiteSessionBackend.defaultURL(environment: $0) })
    }
}

extension SQLiteSessionBackend {
    /// The embedded default: `sqlite:` in `GIMLET_DATA_DIR`, or in `data`
    /// under the working directory; always an absolute path, so the log and
    /// error messages say exactly where sessions go.
    public static func defaultURL(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        "sqlite://" + SQLiteDatabase.defaultPath("sessions.sqlite", environment: environment)
    }

    /// Creates the database's directory if needed, and checks that this
    /// process can write there (SQLite keeps `-wal` and `-shm` files beside it).
    static func prepareDirectory(of path: String) throws(SessionConfigurationError) {
        let parent = (path as NSString).deletingLastPathComponent
        let absolute = parent.hasPrefix("/") ? parent
            : FileManager.default.currentDirectoryPath + (parent.isEmpty ? "" : "/" + parent)
        let advice = "this user (\(ProcessInfo.processInfo.userName)) must be able to write there"
        do {
            // Sessions are the app's alone: a directory it creates is its user's only.
            try FileManager.default.createDirectory(atPath: absolute, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw SessionConfigurationError("cannot create the session directory \(absolute); \(advice)")
        }
        guard FileManager.default.isWritableFile(atPath: absolute) else {
            throw SessionConfigurationError("the session directory \(absolute) is not writable; \(advice)")
        }
    }
}
