import Foundation

extension Response {
    /// An `application/json` response with `value` encoded by `JSONEncoder`.
    ///
    /// The default encoder writes object keys sorted, so the same value is
    /// the same bytes in every process and on every run (Foundation's
    /// dictionaries, and so an encoder's unsorted output, are ordered
    /// differently per process): caches, ETags and tests can compare
    /// answers. Pass an encoder of your own for another format.
    ///
    /// - Throws: the encoder's error if `value` cannot be encoded.
    public static func json<T: Encodable>(
        _ value: T, status: HTTPStatus = .ok, encoder: JSONEncoder = Response.jsonEncoder()
    ) throws -> Response {
        let data = try encoder.encode(value)
        return Response(status: status, headers: ["Content-Type": "application/json"], body: Array(data))
    }

    /// The encoder ``json(_:status:encoder:)`` uses unless given another: keys sorted.
    public static func jsonEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
