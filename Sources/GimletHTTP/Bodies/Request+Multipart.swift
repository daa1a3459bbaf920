/// One part of a `multipart/form-data` body, whole: a field's bytes in
/// memory, or a file part in a ``TemporaryFile``.
///
/// A part is a file part when its `Content-Disposition` has a `filename`
/// (a browser's file input, an empty one included). The filename is what
/// the client said and nothing more: never use it as a path.
public struct MultipartPart {
    /// The form field's name.
    public let name: String
    /// The file's name as the client gave it; `nil` for a field.
    public let filename: String?
    /// The part's `Content-Type`, if the client gave one.
    public let contentType: String?
    /// The part's size in bytes.
    public let size: Int
    /// A field's bytes; `nil` for a file part.
    public let bytes: [UInt8]?
    /// A file part's bytes, in an unnamed temporary file that vanishes
    /// when the part is let go or the request ends (``TemporaryFile/keep(at:mode:)``
    /// names it); `nil` for a field.
    public let file: TemporaryFile?

    /// A field's value as UTF-8 text; `nil` for a file part or bytes that are not UTF-8.
    public var text: String? { bytes.flatMap { UTF8Text.string($0) } }
}

/// A whole `multipart/form-data` body: its fields and its files.
///
/// ```swift
/// router.post("/profile", options: .streamBody) { request in
///     let form = try request.multipartForm()
///     let nickname = form["nickname"] ?? ""
///     guard let picture = form.file("picture"), let file = picture.file else {
///         throw HTTPError(.badRequest, "no picture")
///     }
///     try file.keep(at: "/srv/pictures/\(UUID())")
///     return .text("\(nickname): \(picture.size) bytes")
/// }
/// ```
public struct MultipartForm {
    /// Every part, in the order they came.
    public let parts: [MultipartPart]

    /// The first field named `name`, as text.
    public subscript(name: String) -> String? { parts.first { $0.name == name && $0.file == nil }?.text }

    /// Every field named `name`, as text, in order.
    public func values(_ name: String) -> [String] {
        parts.filter { $0.name == name && $0.file == nil }.compactMap(\.text)
    }

    /// The first file part named `name`.
    public func file(_ name: String) -> MultipartPart? { parts.first { $0.name == name && $0.file != nil } }

    /// Every file part, in order.
    public var files: [MultipartPart] { parts.filter { $0.file != nil } }
}

extension Request {
    /// Reads a `multipart/form-data` body part by part, calling `handle`
    /// once each part has arrived whole: a field in memory, a file spooled
    /// to an unnamed temporary file as its bytes arrive. With
    /// ``RouteOptions/streamBody`` the parts are read straight from the web
    /// server, so a file part is written to disk once; without it, the body
    /// was read first (and, past `--body-buffer`, spooled) and is parsed
    /// from there.
    ///
    /// ```swift
    /// router.post("/photos", options: .streamBody) { request in
    ///     var stored = 0
    ///     try request.forEachPart { part in
    ///         guard let file = part.file else { return }
    ///         try file.keep(at: "/srv/photos/\(UUID())")
    ///         stored += 1
    ///     }
    ///     return .text("\(stored) photos")
    /// }
    /// ```
    ///
    /// - Throws: ``HTTPError`` `415` when the body is not
    ///   `multipart/form-data`, `400` with a short reason for malformed
    ///   multipart, `413` past `limits` or `--max-body`;
    ///   ``TemporaryFileError`` when a file part cannot be stored; what
    ///   `handle` threw.
    public func forEachPart(limits: MultipartLimits = MultipartLimits(), _ handle: (MultipartPart) throws -> Void) throws {
        // Read once already (multipartForm, a CSRF check): the same parts again.
        if let parsed = parsedMultipartForm {
            for part in parsed.parts { try handle(part) }
            return
        }
        do {
            var parser = try MultipartParser(contentType: contentType ?? "", limits: limits)
            var reader = MultipartPartReader(limits: limits, directory: body.spoolDirectory)
            try body.forEachChunk { chunk in
                try parser.feed(chunk) { event in
                    if let part = try reader.take(event) { try handle(part) }
                }
            }
            try parser.finish()
        } catch let error as MultipartError {
            throw error.httpError
        }
    }

    /// The whole `multipart/form-data` body: every field in memory, every
    /// file in its temporary file (see ``forEachPart(limits:_:)``). Read
    /// once and kept: a second call (or `verifyCSRF`, which looks for its
    /// token here) gets the same form, and ``forEachPart(limits:_:)`` its parts.
    ///
    /// - Throws: as ``forEachPart(limits:_:)``.
    public func multipartForm(limits: MultipartLimits = MultipartLimits()) throws -> MultipartForm {
        if let parsedMultipartForm { return parsedMultipartForm }
        var parts: [MultipartPart] = []
        try forEachPart(limits: limits) { parts.append($0) }
        let form = MultipartForm(parts: parts)
        parsedMultipartForm = form
        return form
    }

    /// Whether the body is `multipart/form-data`.
    public var isMultipartForm: Bool { contentType.map { mediaTypeIs($0, "multipart/form-data") } ?? false }
}

/// Turns the parser's events into whole parts, within the field limits.
struct MultipartPartReader {
    let limits: MultipartLimits
    let directory: String
    private var head: MultipartHead?
    private var bytes: [UInt8] = []
    private var file: TemporaryFile?
    private var size = 0
    private var fieldsBytes = 0

    init(limits: MultipartLimits, directory: String) {
        self.limits = limits
        self.directory = directory
    }

    /// Takes one event; a part once it is whole.
    mutating func take(_ event: MultipartParser.Event) throws -> MultipartPart? {
        switch event {
        case .part(let next):
            head = next
            bytes = []
            size = 0
            file = next.filename == nil ? nil : try TemporaryFile(directory: directory)
            return nil
        case .bytes(let slice):
            size += slice.count
            if let file {
                try file.append(Array(slice))
            } else {
                fieldsBytes += slice.count
                guard size <= limits.maxFieldBytes else {
                    throw MultipartError(.tooLarge, "a form field is longer than \(limits.maxFieldBytes) bytes")
                }
                guard fieldsBytes <= limits.maxFieldsBytes else {
                    throw MultipartError(.tooLarge, "the form's fields are longer than \(limits.maxFieldsBytes) bytes together")
                }
                bytes += slice
            }
            return nil
        case .partEnd:
            guard let head else { return nil }
            defer {
                self.head = nil
                file = nil
                bytes = []
            }
            return MultipartPart(name: head.name, filename: head.filename, contentType: head.contentType, size: size,
                                 bytes: file == nil ? bytes : nil, file: file)
        }
    }
}
