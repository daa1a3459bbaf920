@_spi(GimletInlined) import GimletSystem
import GimletTransport
import Glibc
import Testing

@Suite("The door for system calls")
struct SystemCallTests {
    @Test("an interrupted call is run again; another failure names the call and errno")
    func interruptedCallsAreRetried() throws {
        var attempts = 0
        let result = try SystemCall.retrying("fake") { () -> Int32 in
            attempts += 1
            if attempts < 3 {
                errno = EINTR
                return -1
            }
            return 7
        }
        #expect(result == 7)
        #expect(attempts == 3)

        let error = #expect(throws: SystemCallError.self) {
            try SystemCall.retrying("setsockopt(SO_RCVTIMEO)") { () -> Int32 in
                errno = EBADF
                return -1
            }
        }
        #expect(error == SystemCallError("setsockopt(SO_RCVTIMEO)", errno: EBADF))
        #expect(error?.description == "setsockopt(SO_RCVTIMEO): Bad file descriptor (errno 9)")
    }

    @Test("a call that would block is nil, not an error")
    func wouldBlockIsNil() throws {
        let result = try SystemCall.unlessWouldBlock("read") { () -> Int in
            errno = EAGAIN
            return -1
        }
        #expect(result == nil)
    }

    @Test("a socket option on a closed descriptor fails naming the option")
    func socketOptionFailuresNameTheOption() {
        let error = #expect(throws: SystemCallError.self) {
            try SystemCall.setSocketOption(-1, level: SOL_SOCKET, SO_REUSEADDR, Int32(1), name: "SO_REUSEADDR")
        }
        #expect(error?.call == "setsockopt(SO_REUSEADDR)")
        #expect(error?.errno == EBADF)
    }

    @Test("a port already taken says which call failed, with errno")
    func bindFailureNamesTheCall() throws {
        // Hold a port, then ask for it again.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(holder, pointer, length) == 0 && listen(holder, 1) == 0 && getsockname(holder, pointer, &length) == 0
            }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let error = #expect(throws: TransportError.self) {
            _ = try ListeningSocket.open(.tcp(host: "127.0.0.1", port: port), backlog: 1, socketMode: nil)
        }
        #expect(error?.call == "bind")
        #expect(error?.errno == EADDRINUSE)
        #expect(error?.description.contains("cannot bind 127.0.0.1:\(port)") == true)
    }
}
