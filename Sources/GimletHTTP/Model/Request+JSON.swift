import Foundation

extension Request {
    /// Decodes the body as JSON into `type`.
    ///
    /// ```swift
    /// struct NewNote: Decodable { var text: String }
    /// router.post("/api/notes") { request in
    ///     let note = try request.decodeJSON(NewNote.self)
    ///     return try .json(["saved": note.text], status: .created)
    /// }
    /// ```
    ///
    /// - Throws: ``HTTPError`` `415 Unsupported Media Type` unless the
    ///   `Content-Type` is `application/json` (or `…+json`), and
    ///   `400 Bad Request` with a short reason (the field and what was wrong)
    ///   when the body is not valid JSON of that shape. The router answers
    ///   either in the form the client accepts.
    public func decodeJSON<T: Decodable>(_ type: T.Type = T.self, decoder: JSONDecoder = JSONDecoder()) throws(HTTPError) -> T {
        let essence = (contentType ?? "").split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        let mediaType = essence.trimmingCharacters(in: .whitespaces).lowercased()
        guard mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json")) else {
            throw HTTPError(.unsupportedMediaType, "expected a JSON body (Content-Type: application/json)"
                + (mediaType.isEmpty ? "" : ", not \(mediaType)"))
        }
        let bytes: [UInt8]
        do { bytes = try body.bytesForParsing() } catch let error as HTTPError { throw error } catch {
            throw HTTPError(.internalServerError, "the JSON body could not be read")
        }
        do {
            return try decoder.decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw HTTPError(.badRequest, "bad JSON: " + Self.reason(error))
        } catch {
            throw HTTPError(.badRequest, "bad JSON")
        }
    }

    /// A short, client-safe description of a decoding failure.
    static func reason(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            var text = ""
            for key in context.codingPath {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text.isEmpty ? "the body" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing \(parent == "the body" ? "" : parent + ".")\(key.stringValue)"
        case .typeMismatch(let type, let context): return "\(path(context)) is not \(Self.article(type))"
        case .valueNotFound(let type, let context): return "\(path(context)) is null, expected \(Self.article(type))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(path(context)) has an invalid value"
        @unknown default: return "not the expected shape"
        }
    }

    private static func article(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is Double.Type, is Float.Type: "a number"
        default: String(describing: type).hasPrefix("Array") ? "an array" : "an object"
        }
    }
}
