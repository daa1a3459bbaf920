/// The values a route captured from the request's path: one per `:name`
/// segment of its pattern and `*` for a trailing wildcard, percent-decoded.
///
/// Read a value as text with the subscript, or ask for it in the type the
/// handler needs: a value that does not convert answers `400 Bad Request`
/// by itself.
///
/// ```swift
/// router.get("/items/:id") { request in
///     let id = try request.parameters.require("id", as: Int.self)   // "/items/x" answers 400
///     return .text("item \(id)")
/// }
/// ```
public struct RouteParameters: Sendable {
    /// The pattern's names, in order (shared by every request of the route).
    private let names: [String]
    /// The captured values, in the same order.
    private let values: [String]

    /// No parameters: the request has not been routed, or its route captures nothing.
    public init() {
        names = []
        values = []
    }

    init(names: [String], values: [String]) {
        self.names = names
        self.values = values
    }

    /// The value captured for `name`, or `nil` if the route has no such parameter.
    public subscript(name: String) -> String? {
        guard let index = names.firstIndex(of: name), index < values.count else { return nil }
        return values[index]
    }

    /// Whether the route captured nothing.
    public var isEmpty: Bool { values.isEmpty }

    /// The value captured for `name`.
    ///
    /// - Throws: ``RouterConfigurationError`` (a logged `500`) if the route
    ///   has no parameter `name`: the handler and its pattern disagree.
    public func require(_ name: String) throws -> String {
        guard let value = self[name] else {
            throw RouterConfigurationError(problems: ["the handler asks for :\(name), which its route's pattern does not capture"])
        }
        return value
    }

    /// The value captured for `name`, converted to `Value` (`Int`, `UInt64`,
    /// `Double`, `Bool`, any `LosslessStringConvertible` type).
    ///
    /// - Throws: ``HTTPError`` `400 Bad Request` if the value does not
    ///   convert; ``RouterConfigurationError`` (a logged `500`) if the route
    ///   has no parameter `name`.
    public func require<Value: LosslessStringConvertible>(_ name: String, as type: Value.Type) throws -> Value {
        guard let value = Value(try require(name)) else { throw Self.badValue(name, type) }
        return value
    }

    /// The value captured for `name` as a case of a `String`-backed enum
    /// (any `RawRepresentable` with `String` raw values).
    ///
    /// - Throws: ``HTTPError`` `400 Bad Request` if no case has that raw
    ///   value; ``RouterConfigurationError`` (a logged `500`) if the route
    ///   has no parameter `name`.
    public func require<Value: RawRepresentable>(_ name: String, as type: Value.Type) throws -> Value
    where Value.RawValue == String {
        guard let value = Value(rawValue: try require(name)) else { throw Self.badValue(name, type) }
        return value
    }

    private static func badValue(_ name: String, _ type: Any.Type) -> HTTPError {
        HTTPError(.badRequest, "the path's \(name == "*" ? "tail" : ":" + name) is not a valid \(type)")
    }
}
