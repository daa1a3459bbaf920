import Synchronization

/// This process's session commits since it began, and the transactions
/// that applied them: with group commit (SQLite, PostgreSQL), commits that
/// arrive while a transaction runs share the next one, so there are fewer
/// transactions than commits under concurrent writes. The host's scoreboard
/// reads them for the status page.
package enum CommitTotals {
    /// Requests' commits applied or refused by a batch.
    package static let commits = Atomic<Int>(0)
    /// Batches run: a transaction (and, on PostgreSQL, a round trip) each.
    package static let transactions = Atomic<Int>(0)
}
