/// A value stored in a session: the JSON data model.
///
/// Literals work directly, and typed accessors read it back:
///
/// ```swift
/// session["user"] = "Frodo"
/// session["visits"] = 3
/// session["cart"] = ["ring", "cloak"]
/// let visits = session["visits"]?.intValue ?? 0
/// ```
///
/// Values are stored as JSON, in the cookie or in the backend: never an
/// executable serialization format.
public enum SessionValue: Sendable, Hashable {
    /// JSON's `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A whole number (JSON numbers without a fraction or exponent).
    case int(Int)
    /// Any other number; a non-finite one cannot be stored.
    case double(Double)
    /// Text.
    case string(String)
    /// A list of values.
    case array([SessionValue])
    /// Named values, as a JSON object.
    case object([String: SessionValue])

    /// The string, if this is one.
    public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    /// The integer, if this is one (or a double with no fractional part).
    public var intValue: Int? {
        switch self {
        case .int(let v): v
        case .double(let v): v.rounded() == v && abs(v) < 9.0e15 ? Int(v) : nil
        default: nil
        }
    }
    /// The number as a double, if this is one.
    public var doubleValue: Double? {
        switch self {
        case .double(let v): v
        case .int(let v): Double(v)
        default: nil
        }
    }
    /// The boolean, if this is one.
    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    /// The elements, if this is an array.
    public var arrayValue: [SessionValue]? { if case .array(let v) = self { v } else { nil } }
    /// The members, if this is an object.
    public var objectValue: [String: SessionValue]? { if case .object(let v) = self { v } else { nil } }
    /// Whether this is `null`.
    public var isNull: Bool { self == .null }

    /// Appends `element` to an array (a non-array becomes a one-element array).
    ///
    /// Through the session, `session["list"]?.append("x")` stores the change.
    public mutating func append(_ element: SessionValue) {
        if case .array(var elements) = self {
            self = .null
            elements.append(element)
            self = .array(elements)
        } else {
            self = .array([element])
        }
    }

    /// The member `key`, if this is an object; setting makes it one.
    public subscript(key: String) -> SessionValue? {
        get { objectValue?[key] }
        set {
            var members = objectValue ?? [:]
            members[key] = newValue
            self = .object(members)
        }
    }

    /// How the value reads as plain text: strings as they are, the rest as JSON.
    public var text: String {
        if case .string(let v) = self { return v }
        return String(decoding: json, as: UTF8.self)
    }
}

extension SessionValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: SessionValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, SessionValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
