// Three ways to offer the same small function to another target.

/// `package`, as Gimlet's cross-target internals are.
package func packagePlain(_ x: Int) -> Int { x &* 3 &+ 1 }

/// `package` and `@inlinable`.
@inlinable package func packageInlinable(_ x: Int) -> Int { x &* 5 &+ 1 }

/// What Gimlet does for the few internals a request's path needs inlined.
@_spi(Inlined) @inlinable public func spiInlinable(_ x: Int) -> Int { x &* 7 &+ 1 }
