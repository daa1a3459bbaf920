import Gimlet
import GimletHTTP

/// A user's sessions (`SessionRegistry`) in one round trip each: one
/// prepared statement reads the index channel's rows (their keys are
/// channel ids in hex) with the listed channels' rows, or deletes them.
extension PostgreSQLSessionBackend {
    /// The entries of index `$1` unexpired at `$2` whose key is a channel id, as (entry key, value, channel id).
    private static func listedEntries(_ table: String) -> String {
        """
        SELECT i.key AS entry, i.value, decode(convert_from(i.key, 'UTF8'), 'hex') AS id
            FROM \(table) AS i
            WHERE i.id = $1 AND i.expires > $2 AND convert_from(i.key, 'UTF8') ~ '^[0-9a-f]{32}$'
        """
    }

    /// Rows (id, key, value) of keys `$3` of the channels index `$1` lists,
    /// unexpired at `$2`; the index's entries of channels with no row left go.
    static func loadIndexedStatement(_ table: String) -> String {
        """
        WITH listed AS MATERIALIZED (\(listedEntries(table))),
        stale AS (
            DELETE FROM \(table) AS t USING listed
            WHERE t.id = $1 AND t.key = listed.entry
                AND NOT EXISTS (SELECT FROM \(table) AS s WHERE s.id = listed.id AND s.expires > $2))
        SELECT s.id, s.key, s.value FROM \(table) AS s JOIN listed ON s.id = listed.id
            WHERE s.key = ANY ($3::bytea[]) AND s.expires > $2
        """
    }

    /// Deletes the channels index `$1` lists (unexpired at `$2`) but those
    /// in `$3`, and their entries; returns (id, entry value) of each that still had unexpired rows.
    static func deleteIndexedStatement(_ table: String) -> String {
        """
        WITH listed AS MATERIALIZED (
            SELECT * FROM (\(listedEntries(table))) AS e WHERE e.id <> ALL ($3::bytea[])),
        gone AS (
            DELETE FROM \(table) AS t USING listed WHERE t.id = listed.id RETURNING t.id, t.expires),
        unlisted AS (
            DELETE FROM \(table) AS t USING listed WHERE t.id = $1 AND t.key = listed.entry)
        SELECT listed.id, listed.value::text FROM listed
            WHERE EXISTS (SELECT FROM gone WHERE gone.id = listed.id AND gone.expires > $2)
        """
    }

    public func loadIndexed(_ index: SessionID, keys: [String]) throws -> [SessionID: [String: SessionValue]] {
        var wanted = PostgreSQLArray(of: .bytea)
        for key in keys { wanted.append(key.utf8) }
        let found = try exchange("listed", [.bytes(index.bytes), .text(String(configuration.clock.now())), .bytes(wanted.encoded)])
        var channels: [SessionID: [String: SessionValue]] = [:]
        for row in found.rows where row.count == 3 {
            guard let id = row[0].flatMap({ SessionID(bytes: $0) }), let key = row[1].flatMap(UTF8Text.string),
                  let value = row[2].flatMap({ try? SessionValue(json: $0) }) else { continue }
            channels[id, default: [:]][key] = value
        }
        return channels
    }

    public func deleteIndexed(_ index: SessionID, keeping: Set<SessionID>) throws -> [SessionID: SessionValue] {
        let kept = PostgreSQLArray.bytea(keeping.map(\.bytes))
        let found = try exchange("revoke", [.bytes(index.bytes), .text(String(configuration.clock.now())), .bytes(kept)])
        var deleted: [SessionID: SessionValue] = [:]
        for row in found.rows where row.count == 2 {
            guard let id = row[0].flatMap({ SessionID(bytes: $0) }) else { continue }
            deleted[id] = row[1].flatMap { try? SessionValue(json: $0) } ?? .null
        }
        return deleted
    }
}
