/// An HTTP status code with its reason phrase.
///
/// ```swift
/// Response.text("gone", status: .notFound)
/// Response.text("teapot", status: HTTPStatus(code: 418))
/// ```
public struct HTTPStatus: Hashable, Sendable, CustomStringConvertible {
    /// The three-digit code.
    public let code: Int
    /// The reason phrase sent after the code in the CGI `Status:` line.
    public let reasonPhrase: String

    /// Creates a status; the reason phrase defaults to the standard one for the code.
    public init(code: Int, reasonPhrase: String? = nil) {
        self.code = code
        self.reasonPhrase = reasonPhrase ?? HTTPStatus.standardReason(for: code)
    }

    public var description: String { "\(code) \(reasonPhrase)" }

    /// Whether the code is 2xx.
    public var isSuccess: Bool { (200..<300).contains(code) }

    /// `200` (ok).
    public static let ok = HTTPStatus(code: 200)
    /// `201` (created).
    public static let created = HTTPStatus(code: 201)
    /// `204` (no content).
    public static let noContent = HTTPStatus(code: 204)
    /// `206` (partial content: a byte range).
    public static let partialContent = HTTPStatus(code: 206)
    /// `301` (moved permanently).
    public static let movedPermanently = HTTPStatus(code: 301)
    /// `302` (found).
    public static let found = HTTPStatus(code: 302)
    /// `303` (see other).
    public static let seeOther = HTTPStatus(code: 303)
    /// `304` (not modified).
    public static let notModified = HTTPStatus(code: 304)
    /// `307` (temporary redirect).
    public static let temporaryRedirect = HTTPStatus(code: 307)
    /// `308` (permanent redirect).
    public static let permanentRedirect = HTTPStatus(code: 308)
    /// `400` (bad request).
    public static let badRequest = HTTPStatus(code: 400)
    /// `401` (unauthorized).
    public static let unauthorized = HTTPStatus(code: 401)
    /// `403` (forbidden).
    public static let forbidden = HTTPStatus(code: 403)
    /// `404` (not found).
    public static let notFound = HTTPStatus(code: 404)
    /// `405` (method not allowed).
    public static let methodNotAllowed = HTTPStatus(code: 405)
    /// `409` (conflict).
    public static let conflict = HTTPStatus(code: 409)
    /// `413` (payload too large).
    public static let payloadTooLarge = HTTPStatus(code: 413)
    /// `415` (unsupported media type).
    public static let unsupportedMediaType = HTTPStatus(code: 415)
    /// `416` (range not satisfiable).
    public static let rangeNotSatisfiable = HTTPStatus(code: 416)
    /// `422` (unprocessable content).
    public static let unprocessableContent = HTTPStatus(code: 422)
    /// `429` (too many requests).
    public static let tooManyRequests = HTTPStatus(code: 429)
    /// `500` (internal server error).
    public static let internalServerError = HTTPStatus(code: 500)
    /// `501` (not implemented).
    public static let notImplemented = HTTPStatus(code: 501)
    /// `502` (bad gateway).
    public static let badGateway = HTTPStatus(code: 502)
    /// `503` (service unavailable).
    public static let serviceUnavailable = HTTPStatus(code: 503)
    /// `504` (gateway timeout).
    public static let gatewayTimeout = HTTPStatus(code: 504)

    static func standardReason(for code: Int) -> String {
        switch code {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 418: "I'm a teapot"
        case 422: "Unprocessable Content"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default:
            switch code / 100 {
            case 1: "Informational"
            case 2: "Success"
            case 3: "Redirection"
            case 4: "Client Error"
            default: "Server Error"
            }
        }
    }
}
