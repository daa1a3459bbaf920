import Foundation
import Gimlet
import GimletHTTP
import Synchronization

extension TestResponse {
    /// The first value of header `name` (any case), or `nil`.
    public func header(_ name: String) -> String? { response.headers[name] }

    /// The body decoded from JSON as `type`.
    ///
    /// - Throws: `DecodingError` when the body is not that JSON.
    public func json<T: Decodable>(_ type: T.Type = T.self, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: Data(response.body))
    }
}

extension TestClient {
    /// Sends a POST of `form` as `application/x-www-form-urlencoded`, each
    /// name and value percent-encoded, in the order given.
    ///
    /// ```swift
    /// client.post("/login", form: ["name": "ada", "password": "correct horse", "csrf_token": token])
    /// ```
    @discardableResult
    public func post(_ uri: String, form: KeyValuePairs<String, String>, headers: [String: String] = [:]) -> TestResponse {
        request("POST", uri, body: Self.formBody(form), contentType: "application/x-www-form-urlencoded", headers: headers)
    }

    /// Sends a form POST from async test code.
    @discardableResult
    public func post(_ uri: String, form: KeyValuePairs<String, String>, headers: [String: String] = [:]) async -> TestResponse {
        await request("POST", uri, body: Self.formBody(form), contentType: "application/x-www-form-urlencoded", headers: headers)
    }

    /// Sends a POST of `value` encoded as JSON (`Content-Type: application/json`).
    ///
    /// - Throws: the encoder's error if `value` cannot be encoded.
    @discardableResult
    public func post<T: Encodable>(_ uri: String, json value: T, headers: [String: String] = [:]) throws -> TestResponse {
        try request("POST", uri, json: value, headers: headers)
    }

    /// Sends a JSON POST from async test code.
    @discardableResult
    public func post<T: Encodable>(_ uri: String, json value: T, headers: [String: String] = [:]) async throws -> TestResponse {
        try await request("POST", uri, json: value, headers: headers)
    }

    /// Sends `value` encoded as JSON with any method (`PUT`, `PATCH`, …).
    ///
    /// - Throws: the encoder's error if `value` cannot be encoded.
    @discardableResult
    public func request<T: Encodable>(_ method: String, _ uri: String, json value: T,
                                      headers: [String: String] = [:]) throws -> TestResponse {
        request(method, uri, body: try Self.jsonBody(value), contentType: "application/json", headers: headers)
    }

    /// Sends `value` as JSON with any method from async test code.
    @discardableResult
    public func request<T: Encodable>(_ method: String, _ uri: String, json value: T,
                                      headers: [String: String] = [:]) async throws -> TestResponse {
        await request(method, uri, body: try Self.jsonBody(value), contentType: "application/json", headers: headers)
    }

    /// Runs `body` on the session this client's cookies name, in-process,
    /// as a handler of an app configured with `configuration` would, and
    /// keeps what it changed: the jar takes the cookies it sets, the
    /// configuration's backend the server-side data. To read what a test
    /// cannot see through the app (the CSRF token a form would carry), or
    /// to set the scene (a signed-in user) without going through the app.
    ///
    /// ```swift
    /// let token = try client.withSession(configuration) { try $0.csrfToken() }
    /// client.post("/notes", form: ["text": "milk", "csrf_token": token])
    /// ```
    ///
    /// - Throws: what `body` throws (then nothing is kept), or
    ///   ``TestClientError`` if the session could not be stored (its backend failed).
    public func withSession<Value: Sendable>(
        _ configuration: SessionConfiguration, _ body: @escaping @Sendable (Session) throws -> Value
    ) throws -> Value {
        let outcome = Mutex<Result<Value, any Error>?>(nil)
        var router = Router()
        router.use(try SessionMiddleware(configuration))
        router.get("/") { request in
            do {
                let value = try body(request.session)
                outcome.withLock { $0 = .success(value) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
                throw error
            }
            return Response(status: .noContent)
        }
        let inside = TestClient(router, secure: secure)
        inside.cookies = cookies
        inside.environ = environ
        let answer = inside.get("/")
        guard let result = outcome.withLock({ $0 }) else {
            throw TestClientError("the session could not be read: \(answer.status) \(answer.text)")
        }
        let value = try result.get()
        guard answer.status == 204 else { throw TestClientError("the session could not be stored: \(answer.status) \(answer.text)") }
        cookies = inside.cookies
        return value
    }

    /// The CSRF token of this client's session (made if it has none): what
    /// the app's forms carry in `csrf_token` and its scripts in `X-CSRF-Token`.
    ///
    /// - Throws: as ``withSession(_:_:)``.
    public func csrfToken(_ configuration: SessionConfiguration) throws -> String {
        try withSession(configuration) { try $0.csrfToken() }
    }

    static func formBody(_ form: KeyValuePairs<String, String>) -> [UInt8] {
        // RFC 3986 unreserved characters stay as they are; everything else is escaped.
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        func encoded(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "" }
        return Array(form.map { encoded($0.key) + "=" + encoded($0.value) }.joined(separator: "&").utf8)
    }

    static func jsonBody<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array(try encoder.encode(value))
    }
}

/// What ``TestClient`` could not do, and why.
public struct TestClientError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) { self.description = description }
}
