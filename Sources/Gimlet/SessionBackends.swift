import GimletBackendSupport
import Logging

/// One kind of server-side backend as an app links it: the URL schemes it
/// answers, the forms its URLs take, how to read a URL and how to start one.
///
/// Each backend library offers its own (`.sqlite` in GimletSQLite, `.redis`
/// in GimletRedis); an app lists the ones it links in ``SessionBackends``, so
/// a backend it does not list is neither linked nor accepted.
///
/// ```swift
/// extension SessionBackendOpener {
///     public static var mystore: SessionBackendOpener {
///         SessionBackendOpener(
///             schemes: ["mystore://"], forms: ["mystore://host[:port]"],
///             configuration: MyStoreBackend.Configuration.init(url:),
///             start: { configuration, logger in try MyStoreBackend(configuration, logger: logger) })
///     }
/// }
/// ```
public struct SessionBackendOpener: Sendable {
    /// The URL prefixes this backend answers, such as `redis://`.
    public let schemes: [String]
    /// The accepted forms of its URLs, shown when a URL is refused.
    public let forms: [String]
    /// Reads a URL, then returns what starts the backend it names.
    let read: @Sendable (String) throws -> @Sendable (Logger) throws -> any SessionBackend
    /// The URL of this backend's embedded default, worked out from the
    /// environment (`GIMLET_DATA_DIR`), for an app whose `GIMLET_BACKEND` is
    /// unset; `nil` for a store that needs a server.
    public let embeddedDefault: (@Sendable ([String: String]) -> String)?

    /// An opener for URLs starting with one of `schemes`.
    ///
    /// - Parameters:
    ///   - schemes: URL prefixes, such as `redis://`.
    ///   - forms: the accepted forms, for error messages.
    ///   - configuration: reads a URL; throws ``SessionConfigurationError``
    ///     saying what is wrong with it (the accepted forms are added).
    ///   - start: opens the backend, which logs to the logger it is given
    ///     (the app's, through ``SessionBackends``); a
    ///     ``SessionConfigurationError`` it throws reaches the user as it is,
    ///     any other error as "cannot start".
    ///   - embeddedDefault: for an embedded store (a file on this machine),
    ///     the URL to open when `GIMLET_BACKEND` is unset.
    public init<Configuration: Sendable>(
        schemes: [String], forms: [String],
        configuration: @escaping @Sendable (String) throws -> Configuration,
        start: @escaping @Sendable (Configuration, Logger) throws -> any SessionBackend,
        embeddedDefault: (@Sendable ([String: String]) -> String)? = nil
    ) {
        self.schemes = schemes
        self.forms = forms
        self.embeddedDefault = embeddedDefault
        self.read = { url in
            let parsed = try configuration(url)
            return { logger in try start(parsed, logger) }
        }
    }
}

/// The backends an app links, opened by URL.
///
/// `memory:` (one process only) and `none` (every key client-side) are
/// always there; the others are the openers given. Every backend opened
/// logs to `logger`: a library does not make its own.
///
/// ```swift
/// try Host.run(configuration: configuration) { logger in
///     let backends = SessionBackends(.sqlite, .redis, logger: logger)
///     let sessions = try SessionConfiguration(environment: environment, backends: backends)
///     …
/// }
/// ```
public struct SessionBackends: Sendable {
    /// The openers given, in order.
    public let openers: [SessionBackendOpener]
    /// What the backends opened log to (the app's logger).
    public let logger: Logger

    /// The backends `openers` open, plus `memory:` and `none`, logging to `logger`.
    public init(_ openers: SessionBackendOpener..., logger: Logger) {
        self.openers = openers
        self.logger = logger
    }

    /// The URL of the first embedded store among the openers (`.sqlite`:
    /// `sessions.sqlite` in `GIMLET_DATA_DIR`), or `nil` if none is linked.
    public func embeddedDefaultURL(environment: [String: String]) -> String? {
        openers.lazy.compactMap { $0.embeddedDefault?(environment) }.first
    }

    /// Every accepted form, for error messages: exactly what is linked.
    public var acceptedForms: String {
        (openers.flatMap(\.forms) + ["memory:", "none"]).joined(separator: ", ")
    }

    /// The backend `url` names (`nil` for `none`).
    ///
    /// - Throws: ``SessionConfigurationError`` for an unknown scheme or a
    ///   malformed URL, listing the accepted forms; or one saying the backend
    ///   cannot start, with its error.
    public func open(url: String) throws -> (any SessionBackend)? {
        guard let opener = openers.first(where: { opener in opener.schemes.contains { url.hasPrefix($0) } }) else {
            if url == "none" || url == "memory:" || url == "memory" {
                return try SessionConfiguration.builtInBackend(url: url, logger: logger)
            }
            throw SessionConfigurationError("unknown session backend \(String(reflecting: BackendURLRedaction.redacted(url))); accepted: \(acceptedForms)")
        }
        let start: @Sendable (Logger) throws -> any SessionBackend
        do {
            start = try opener.read(url)
        } catch let error as SessionConfigurationError {
            throw SessionConfigurationError("\(error.message); accepted: \(acceptedForms)")
        }
        do {
            return try start(logger)
        } catch let error as SessionConfigurationError {
            throw error
        } catch {
            throw SessionConfigurationError("session backend \(BackendURLRedaction.redacted(url)) cannot start: \(error)")
        }
    }
}
