import Foundation
import Testing

/// The servers the tests start must obey `SIGTERM`, whatever signals the
/// test runner blocks (an in-process host blocks `SIGTERM` and `SIGHUP`).
@Suite struct ChildProcesses {
    /// Runs `body` on a thread that blocks `SIGTERM` and `SIGHUP`, as the
    /// runner's threads do once a host has taken over the signals.
    func withTerminationBlocked<T>(_ body: () throws -> T) rethrows -> T {
        var blocked = sigset_t(), previous = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        sigaddset(&blocked, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        return try body()
    }

    @Test func aChildStartsWithNoSignalBlockedOrIgnored() throws {
        let scratch = try TemporaryDirectory("gimlet-child")
        let child = try withTerminationBlocked {
            try ManagedProcess("grep", executable: "/bin/grep", arguments: ["^Sig[BI]", "/proc/self/status"],
                               outputPath: scratch.file("status"))
        }
        #expect(child.waitForExit(seconds: 10) == 0)
        func mask(_ name: String) -> UInt64? {
            child.output.split(whereSeparator: \.isNewline).first { $0.hasPrefix(name + ":") }
                .flatMap { UInt64($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces), radix: 16) }
        }
        #expect(mask("SigBlk") == 0, "\(child.output)")
        // Signals 1 to 31; glibc keeps 32 and 33 for itself.
        #expect(mask("SigIgn").map { $0 & 0x7FFF_FFFF } == 0, "\(child.output)")
    }

    @Test func stopEndsAChildWithSIGTERM() throws {
        let scratch = try TemporaryDirectory("gimlet-child")
        let child = try withTerminationBlocked {
            try ManagedProcess("sleep", executable: "/bin/sleep", arguments: ["60"], outputPath: scratch.file("out"))
        }
        child.send(SIGTERM)
        #expect(child.waitForExit(seconds: 4) == SIGTERM, "SIGTERM ended it, not the SIGKILL that follows 5 s later")
    }

    @Test func aChildKeepsNoDescriptorOfTheRunnerOpen() throws {
        let scratch = try TemporaryDirectory("gimlet-child")
        let pipe = Pipe()   // a descriptor another test might wait on
        defer { try? pipe.fileHandleForReading.close() }
        try pipe.fileHandleForWriting.close()
        let child = try ManagedProcess("ls", executable: "/bin/ls", arguments: ["/proc/self/fd"], outputPath: scratch.file("fds"))
        #expect(child.waitForExit(seconds: 10) == 0)
        let descriptors = child.output.split(whereSeparator: \.isNewline).compactMap { Int($0) }
        // ls's own: 0, 1, 2 and the directory it lists.
        #expect(descriptors.count <= 4, "only the standard streams and ls's own: \(descriptors)")
    }
}
