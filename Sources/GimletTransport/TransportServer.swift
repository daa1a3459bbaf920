/// What the host needs of a transport: serve until stopped, stop from anywhere.
package protocol TransportServer: Sendable {
    /// Serves until ``stop()``; returns when every accepted request has finished.
    func run()
    /// Stops accepting; in-flight requests finish. Safe from any thread.
    func stop()
}
