import Foundation

extension SessionValue {
    /// Encodes any `Encodable` as a session value (through JSON).
    ///
    /// - Throws: the encoder's error, or ``SessionValueError`` for a top-level
    ///   value JSON cannot hold.
    public init<T: Encodable>(encoding value: T) throws {
        try self.init(json: Array(JSONEncoder().encode(value)))
    }

    /// Decodes the value as `type` (through JSON).
    ///
    /// - Throws: the decoder's error when the stored value does not fit `type`.
    public func decode<T: Decodable>(as type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(json))
    }
}
