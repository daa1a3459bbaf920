/// A key for a value that middleware attaches to a ``Request``.
///
/// ```swift
/// enum UserKey: RequestStorageKey { typealias Value = String }
/// request.storage[UserKey.self] = "frodo"
/// ```
public protocol RequestStorageKey {
    /// The type of the stored value.
    associatedtype Value
}

/// Typed per-request values, keyed by ``RequestStorageKey`` types.
///
/// Middleware uses it to hand request-scoped state (a session, a user) to
/// handlers; the extension that exposes it usually offers a typed property.
public struct RequestStorage {
    @usableFromInline var values: [ObjectIdentifier: Any] = [:]

    /// An empty storage.
    public init() {}

    /// The value stored under `key`.
    ///
    /// Inlinable, so it is specialized for each key type where it is used:
    /// the generic version cost some 1,500 instructions per access.
    @inlinable
    public subscript<Key: RequestStorageKey>(key: Key.Type) -> Key.Value? {
        // Cast to Key.Value, not Key.Value?: casting to an optional looked up
        // the optional's generic metadata at run time on every access.
        get {
            guard let value = values[ObjectIdentifier(key)] else { return nil }
            return value as? Key.Value
        }
        set {
            if let newValue {
                // updateValue takes `Any`: the subscript's `Any?` needed the optional's metadata too.
                values.updateValue(newValue, forKey: ObjectIdentifier(key))
            } else {
                values.removeValue(forKey: ObjectIdentifier(key))
            }
        }
    }
}
