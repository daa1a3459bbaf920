// The only file of the host that calls glibc's execinfo and the stack-capture
// handler (CStackCapture), and the Swift runtime's demangler.
import CStackCapture
import Glibc

/// Where a worker thread is right now, as demangled function names: what
/// the slow-request and request-timeout logs print, like php-fpm's slowlog.
///
/// The thread is interrupted by a real-time signal whose handler records
/// its return addresses (`backtrace`). A system call it was in is resumed
/// (`SA_RESTART`) or, for waits that cannot be (`sleep`, `poll`), returns
/// `EINTR` early, as for any signal. A stopped process cannot answer:
/// then there is no stack to show.
enum StackCapture {
    /// glibc's first free real-time signal plus four, clear of what the
    /// Swift runtime and Dispatch use.
    static let signalNumber = __libc_current_sigrtmin() + 4

    /// Installs the handler, once per process; `false` if the system refused.
    static func install() -> Bool { installed }

    private static let installed: Bool = gimlet_stack_capture_install(signalNumber) == 0

    /// The calling thread, for a later ``frames(of:)``.
    static func currentThread() -> pthread_t { pthread_self() }

    /// The stack of `thread`, innermost first; empty if it did not answer within 200 ms.
    static func frames(of thread: pthread_t) -> [String] {
        guard installed else { return [] }
        var addresses = [UnsafeMutableRawPointer?](repeating: nil, count: 64)
        let count = Int(gimlet_stack_capture(thread, signalNumber, &addresses, Int32(addresses.count), 200))
        guard count > 0, let symbols = backtrace_symbols(&addresses, Int32(count)) else { return [] }
        defer { free(symbols) }
        // Frame 0 is the handler, 1 the signal trampoline.
        return (min(2, count)..<count).map { index in
            symbols[index].map { describe(String(cString: $0)) } ?? "?"
        }
    }

    /// `/path/app(mangled+0x1f) [0x55…]` as `function (app)`; a function
    /// the executable does not export (linked without `--export-dynamic`)
    /// as `app+0x2db2ba`, for `addr2line -f -C -e app 0x2db2ba`.
    static func describe(_ line: String) -> String {
        guard let open = line.firstIndex(of: "("), let close = line[open...].firstIndex(of: ")") else { return line }
        let image = line[..<open].split(separator: "/").last.map(String.init) ?? ""
        let inside = line[line.index(after: open)..<close]
        guard !inside.hasPrefix("+") else { return image + inside }
        let symbol = inside.split(separator: "+", maxSplits: 1).first.map(String.init) ?? ""
        guard !symbol.isEmpty else { return "\(line[line.index(after: close)...].trimmingSpaces) (\(image))" }
        return "\(demangle(symbol)) (\(image))"
    }

    static func demangle(_ symbol: String) -> String {
        guard symbol.hasPrefix("$s") || symbol.hasPrefix("_T") else { return symbol }
        guard let demangled = swift_demangle(symbol, symbol.utf8.count, nil, nil, 0) else { return symbol }
        defer { free(demangled) }
        return String(cString: demangled)
    }
}

@_silgen_name("swift_demangle")
private func swift_demangle(
    _ mangledName: UnsafePointer<CChar>, _ length: Int, _ outputBuffer: UnsafeMutablePointer<CChar>?,
    _ outputBufferSize: UnsafeMutablePointer<Int>?, _ flags: UInt32
) -> UnsafeMutablePointer<CChar>?

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}
