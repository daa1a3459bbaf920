import Dispatch
import Foundation
import GimletSystem

/// The default worker-thread count of every transport: two per core, so a
/// thread blocked on a backend does not idle a core.
package func defaultWorkerThreads() -> Int { max(2, 2 * activeProcessorCount()) }

/// A transport's listening socket with what every transport does around it:
/// worker threads, the stop signal, and removing its own unix socket file.
///
/// ```swift
/// let listener = try Listener(listening: .unix(path: "/run/app.sock"), backlog: 1024, socketMode: 0o660)
/// listener.runWorkers(count: 8, name: "gimlet-scgi") { index in … accept loop … }
/// ```
package final class Listener: Sendable {
    /// The listening socket.
    package let descriptor: Int32
    /// Raised by ``stop()``; every waiting worker wakes.
    package let stopSignal: StopSignal
    private let ownedSocket: OwnedSocketFile?

    /// Takes ownership of `descriptor`; `ownedPath` is the unix socket file
    /// this process created (removed on stop), if any.
    package init(descriptor: Int32, ownedPath: String?, stopSignal: StopSignal) {
        self.descriptor = descriptor
        self.stopSignal = stopSignal
        ownedSocket = ownedPath.flatMap(OwnedSocketFile.init(path:))
    }

    /// Listens on `address` (for `.inherited`, takes fd 0 as it is), and
    /// owns the unix socket file it creates there.
    ///
    /// - Throws: `TransportError` naming the address and the failed call;
    ///   or, for a TCP address other hosts can reach, when `allowed` does
    ///   not say which web servers may connect.
    package convenience init(listening address: ListenAddress, backlog: Int, socketMode: UInt32?,
                             allowed: ClientAllowList?) throws(TransportError) {
        // The stop signal first: once the socket is open, nothing may throw
        // before this listener owns (and so closes) it.
        let stopSignal = try StopSignal()
        let descriptor = try ListeningSocket.open(address, backlog: backlog, socketMode: socketMode)
        let ownedPath: String? = if case .unix(let path) = address { path } else { nil }
        self.init(descriptor: descriptor, ownedPath: ownedPath, stopSignal: stopSignal)
        try ListeningSocket.requireAllowList(for: descriptor, allowed: allowed)
    }

    deinit {
        SocketCalls.close(descriptor)
        ownedSocket?.remove()
    }

    /// Runs `work` on `count` threads and returns once every one has returned.
    package func runWorkers(count: Int, name: String, _ work: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            let thread = Thread {
                work(index)
                group.leave()
            }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
        group.wait()
        ownedSocket?.remove()
    }

    /// Stops accepting; in-flight requests finish. Safe from any thread.
    ///
    /// The socket file goes first: once the signal is up, workers finish and
    /// the process may exit before this thread runs another line.
    package func stop() {
        ownedSocket?.remove()
        stopSignal.raise()
    }

    /// Whether ``stop()`` was called.
    package var isStopping: Bool { stopSignal.isRaised }
}
