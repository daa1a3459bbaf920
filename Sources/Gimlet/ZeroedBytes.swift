extension Array where Element == UInt8 {
    /// `count` zero bytes, allocated through the specialized path.
    ///
    /// `[UInt8](repeating: 0, count:)` allocates through a standard-library
    /// entry point that is never inlined, and so looks up the array storage's
    /// generic metadata at run time: some 530 instructions per call (callgrind),
    /// several times per request. Reserving capacity and appending is
    /// specialized in our module and skips that lookup.
    static func zeroed(count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        bytes.append(contentsOf: repeatElement(0, count: count))
        return bytes
    }
}
