import Dispatch
import Foundation

/// A transport's listening socket with what every transport does around it:
/// worker threads, the stop signal, and removing its own unix socket file.
///
/// ```swift
/// let listener = Listener(descriptor: fd, ownedPath: "/run/app.sock", stopSignal: try StopSignal())
/// listener.runWorkers(count: 8, name: "gimlet-scgi") { index in … accept loop … }
/// ```
public final class Listener: Sendable {
    /// The listening socket.
    public let descriptor: Int32
    /// Raised by ``stop()``; every waiting worker wakes.
    public let stopSignal: StopSignal
    private let ownedSocket: OwnedSocketFile?

    /// Takes ownership of `descriptor`; `ownedPath` is the unix socket file
    /// this process created (removed on stop), if any.
    public init(descriptor: Int32, ownedPath: String?, stopSignal: StopSignal) {
        self.descriptor = descriptor
        self.stopSignal = stopSignal
        ownedSocket = ownedPath.flatMap(OwnedSocketFile.init(path:))
    }

    deinit {
        SocketCalls.close(descriptor)
        ownedSocket?.remove()
    }

    /// Runs `work` on `count` threads and returns once every one has returned.
    public func runWorkers(count: Int, name: String, _ work: @escaping @Sendable (Int) -> Void) {
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
    public func stop() {
        ownedSocket?.remove()
        stopSignal.raise()
    }

    /// Whether ``stop()`` was called.
    public var isStopping: Bool { stopSignal.isRaised }
}
