/// Backend URLs as they may be shown: in a log line, an error message, a
/// status page. Credentials are replaced by `***`.
package enum BackendURLRedaction {
    /// `url` with its password hidden: the part after `:` in the
    /// user-information (`redis://:pw@host`, `postgresql://user:pw@host`),
    /// the whole user-information where a Redis URL gives a bare password
    /// (`redis://pw@host`), and the value of every query option whose name
    /// contains `password` (`?password=…`, `&sentinel_password=…`).
    ///
    /// ```swift
    /// BackendURLRedaction.redacted("redis://app:s3cret@db:6379/0?password=x")
    /// // "redis://app:***@db:6379/0?password=***"
    /// ```
    package static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let scheme = url[..<schemeEnd.lowerBound]
        let afterScheme = url[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? afterScheme.endIndex
        var authority = String(afterScheme[..<authorityEnd])
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            let hidden: String
            if let colon = userInfo.firstIndex(of: ":") {
                hidden = userInfo[...colon] + "***"
            } else {
                hidden = scheme.hasPrefix("redis") ? "***" : String(userInfo)
            }
            authority = hidden + authority[at...]
        }
        var rest = String(afterScheme[authorityEnd...])
        if let question = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: question)...]
            let options = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
                guard let equals = pair.firstIndex(of: "="), pair[..<equals].lowercased().contains("password") else {
                    return String(pair)
                }
                return pair[...equals] + "***"
            }
            rest = rest[...question] + options.joined(separator: "&")
        }
        return scheme + "://" + authority + rest
    }
}
