import Foundation

extension Response {
    /// An `application/json` response with `value` encoded by `JSONEncoder`.
    ///
    /// - Throws: the encoder's error if `value` cannot be encoded.
    public static func json<T: Encodable>(
        _ value: T, status: HTTPStatus = .ok, encoder: JSONEncoder = JSONEncoder()
    ) throws -> Response {
        let data = try encoder.encode(value)
        return Response(status: status, headers: ["Content-Type": "application/json"], body: Array(data))
    }
}
