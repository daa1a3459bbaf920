import Gimlet

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
            default:
                throw SessionConfigurationError("unknown option \(String(reflecting: name)) in \(String(reflecting: url)); known: busy_timeout_ms, synchronous, sweep_interval")
            }
        }
    }
}
