import GimletBackendSupport
import GimletHTTP

/// The `name=value` options in the query of a backend URL, shared by the
/// backends' URL parsers.
package enum BackendURLQuery {
    /// Splits `query` (the part after `?`) on `&`, then each option at its
    /// first `=`; values are percent-decoded.
    ///
    /// - Throws: ``SessionConfigurationError`` for an option without a name
    ///   (`?=x`, `?&=`), naming the URL.
    package static func options(_ query: Substring, url: String) throws(SessionConfigurationError) -> [(name: String, value: String)] {
        var options: [(name: String, value: String)] = []
        for pair in query.split(separator: "&") {
            let equals = pair.firstIndex(of: "=")
            let name = String(pair[..<(equals ?? pair.endIndex)])
            guard !name.isEmpty else {
                throw SessionConfigurationError("an option without a name in \(String(reflecting: BackendURLRedaction.redacted(url))); write name=value")
            }
            let raw = equals.map { pair[pair.index(after: $0)...] } ?? ""
            options.append((name, PercentDecoding.decode(raw, plusAsSpace: false) ?? String(raw)))
        }
        return options
    }
}
