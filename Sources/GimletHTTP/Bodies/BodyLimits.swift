import Foundation

/// What the host accepts of request bodies, and where it keeps large ones.
///
/// | setting | host option | default | the web server's own |
/// | --- | --- | --- | --- |
/// | ``maxBytes`` | `--max-body` | 100 MiB | nginx `client_max_body_size` (1m), Apache `LimitRequestBody` (1 GiB) |
/// | ``memoryBytes`` | `--body-buffer` | 1 MiB | nginx `client_body_buffer_size` (8k/16k) |
/// | ``temporaryDirectory`` | `--body-temp-dir` | `$TMPDIR`, else `/tmp` | nginx `client_body_temp_path` |
///
/// A body up to ``memoryBytes`` is read into memory; a larger one is
/// spooled, as it arrives, to a ``TemporaryFile`` in ``temporaryDirectory``;
/// one over ``maxBytes`` is answered `413` without running the app. Form and
/// JSON bodies (`application/x-www-form-urlencoded`, `application/json`,
/// `…+json`) are parsed in memory, so for them ``memoryBytes`` is the
/// limit. A route with ``RouteOptions/streamBody`` reads its body as it
/// arrives instead (see ``RequestBody``), within ``maxBytes``.
public struct BodyLimits: Sendable, Equatable {
    /// The largest body accepted; a larger one gets `413`.
    public var maxBytes: Int
    /// The largest body held in memory; a larger one is spooled to a file.
    public var memoryBytes: Int
    /// Where spooled bodies go: unnamed files (`O_TMPFILE`) that vanish
    /// when their request ends.
    public var temporaryDirectory: String

    /// Limits; every parameter has the host's default.
    public init(maxBytes: Int = 100 << 20, memoryBytes: Int = 1 << 20,
                temporaryDirectory: String = BodyLimits.defaultTemporaryDirectory) {
        self.maxBytes = maxBytes
        self.memoryBytes = memoryBytes
        self.temporaryDirectory = temporaryDirectory
    }

    /// `$TMPDIR` if set, else `/tmp`.
    public static var defaultTemporaryDirectory: String {
        let variable = ProcessInfo.processInfo.environment["TMPDIR"] ?? ""
        return variable.isEmpty ? "/tmp" : variable
    }

    /// What is wrong with these limits, checked before the first request:
    /// a negative size, or a directory where no temporary file can be made
    /// (missing, not writable); `nil` when they are fine.
    package func problem() -> String? {
        guard maxBytes >= 0 else { return "the maximum body size (--max-body) cannot be negative" }
        guard memoryBytes >= 0 else { return "the in-memory body size (--body-buffer) cannot be negative" }
        do {
            try TemporaryFile(directory: temporaryDirectory).close()
        } catch {
            return "request bodies over \(memoryBytes) bytes go to \(temporaryDirectory) (--body-temp-dir), but \(error); make the directory and let this user write there, or choose another"
        }
        return nil
    }

    /// The 413 answer for a form or JSON body over ``memoryBytes``.
    var tooLargeForMemory: HTTPError {
        HTTPError(.payloadTooLarge, "a form or JSON body is read into memory: at most \(memoryBytes) bytes")
    }

    /// Whether a body of `contentType` is parsed in memory (forms and JSON),
    /// so that ``memoryBytes`` bounds it.
    static func isParsedInMemory(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        if mediaTypeIs(contentType, "application/x-www-form-urlencoded") || mediaTypeIs(contentType, "application/json") {
            return true
        }
        let essence = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return essence.lowercased().hasPrefix("application/") && essence.lowercased().hasSuffix("+json")
    }
}
