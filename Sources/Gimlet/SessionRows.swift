import GimletHTTP
import Logging

/// What the SQL backends share when they load: the ids two at a time (a
/// session's two channels in one statement), and each row of (id, key,
/// value's JSON) read into the result, or skipped with a warning.
///
/// ```swift
/// try SessionRows.load(ids, logger: logger) { first, second, rows in
///     for row in try query(first, second ?? first) { rows.add(id: row.id, key: row.key, json: row.json) }
/// }
/// ```
package struct SessionRows {
    /// The data of each id found.
    package private(set) var found: [SessionID: [String: SessionValue]] = [:]
    private let logger: Logger

    private init(logger: Logger) { self.logger = logger }

    /// Adds one row; one whose id, key or JSON does not read is skipped with a warning.
    package mutating func add(id: [UInt8], key: [UInt8], json: [UInt8]) {
        guard let id = SessionID(bytes: id), let key = UTF8Text.string(key), let value = try? SessionValue(json: json) else {
            logger.warning("skipping an unreadable session row")
            return
        }
        found[id, default: [:]][key] = value
    }

    /// Runs `query` on `ids` two at a time (more ids than a session's two,
    /// never sent by a session, in pairs; `second` is nil for an odd last one).
    package static func load(_ ids: [SessionID], logger: Logger,
                             _ query: (_ first: SessionID, _ second: SessionID?, inout SessionRows) throws -> Void)
        rethrows -> [SessionID: [String: SessionValue]] {
        var rows = SessionRows(logger: logger)
        var index = 0
        while index < ids.count {
            try query(ids[index], index + 1 < ids.count ? ids[index + 1] : nil, &rows)
            index += 2
        }
        return rows.found
    }
}
