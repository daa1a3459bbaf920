/// Decodes a form's text fields (name → values, in order) into a
/// `Decodable`, as HTML forms send them:
///
/// - `String`, integers, `Double`, `Float`, and what decodes from them
///   (a `String`-backed enum): the field's first value;
/// - `Bool`: a checkbox, `true` for `on`, `true`, `yes` or `1`, `false` for
///   `off`, `false`, `no`, `0`, an empty value, or no field at all (an
///   unchecked box sends nothing);
/// - arrays: every value of the field (`tag=a&tag=b`; `tag[]` is `tag`);
/// - optionals: `nil` when the field is missing or empty;
/// - nested structures are not part of a form: a clear error.
struct FormDecoder {
    /// The fields by name; `name[]` is filed under `name`.
    let fields: [String: [String]]

    init(_ pairs: some Sequence<(name: String, value: String)>) {
        var fields: [String: [String]] = [:]
        for (name, value) in pairs {
            let key = name.hasSuffix("[]") ? String(name.dropLast(2)) : name
            fields[key, default: []].append(value)
        }
        self.fields = fields
    }

    /// `type` from the fields.
    ///
    /// - Throws: ``HTTPError`` `400` with a short reason (the field and what was wrong).
    func decode<T: Decodable>(_ type: T.Type) throws(HTTPError) -> T {
        do {
            return try T(from: FieldsDecoder(fields: fields, codingPath: []))
        } catch let error as DecodingError {
            throw HTTPError(.badRequest, "bad form: " + Request.reason(error))
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(.badRequest, "bad form")
        }
    }
}

/// The form as a whole: a keyed container of fields.
private struct FieldsDecoder: Decoder {
    let fields: [String: [String]]
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard codingPath.isEmpty else { throw FieldDecoder.nested(codingPath) }
        return KeyedDecodingContainer(FieldsContainer<Key>(fields: fields, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw FieldDecoder.nested(codingPath) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { throw FieldDecoder.nested(codingPath) }
}

private struct FieldsContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let fields: [String: [String]]
    let codingPath: [any CodingKey]
    var allKeys: [Key] { fields.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { fields[key.stringValue] != nil }

    func decodeNil(forKey key: Key) throws -> Bool { fields[key.stringValue]?.first?.isEmpty ?? true }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try FieldDecoder(values: fields[key.stringValue] ?? [], codingPath: codingPath + [key]).decode(Bool.self)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let values = fields[key.stringValue] else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(codingPath: codingPath, debugDescription: "no field"))
        }
        return try T(from: FieldDecoder(values: values, codingPath: codingPath + [key]))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        throw FieldDecoder.nested(codingPath + [key])
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        throw FieldDecoder.nested(codingPath + [key])
    }

    func superDecoder() throws -> any Decoder { throw FieldDecoder.nested(codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw FieldDecoder.nested(codingPath + [key]) }
}

/// One field: its first value as a single value, all of them as a list.
private struct FieldDecoder: Decoder, SingleValueDecodingContainer {
    let values: [String]
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    static func nested(_ path: [any CodingKey]) -> DecodingError {
        DecodingError.dataCorrupted(DecodingError.Context(codingPath: path, debugDescription: "a form holds no nested values"))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> { throw Self.nested(codingPath) }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { FieldValues(values: values, codingPath: codingPath) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool { values.first?.isEmpty ?? true }

    private func text<T>(_ type: T.Type) throws -> String {
        guard let first = values.first else {
            throw DecodingError.valueNotFound(type, DecodingError.Context(codingPath: codingPath, debugDescription: "no value"))
        }
        return first
    }

    private func parse<T>(_ type: T.Type, _ make: (String) -> T?) throws -> T {
        guard let value = make(try text(type)) else {
            throw DecodingError.typeMismatch(type, DecodingError.Context(codingPath: codingPath, debugDescription: "not a \(type)"))
        }
        return value
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        switch (values.first ?? "").lowercased() {
        case "on", "true", "yes", "1": return true
        case "off", "false", "no", "0", "": return false
        default:
            throw DecodingError.typeMismatch(type, DecodingError.Context(codingPath: codingPath, debugDescription: "not a boolean"))
        }
    }

    func decode(_ type: String.Type) throws -> String { try text(type) }
    func decode(_ type: Double.Type) throws -> Double { try parse(type) { Double($0) } }
    func decode(_ type: Float.Type) throws -> Float { try parse(type) { Float($0) } }
    func decode(_ type: Int.Type) throws -> Int { try parse(type) { Int($0) } }
    func decode(_ type: Int8.Type) throws -> Int8 { try parse(type) { Int8($0) } }
    func decode(_ type: Int16.Type) throws -> Int16 { try parse(type) { Int16($0) } }
    func decode(_ type: Int32.Type) throws -> Int32 { try parse(type) { Int32($0) } }
    func decode(_ type: Int64.Type) throws -> Int64 { try parse(type) { Int64($0) } }
    func decode(_ type: UInt.Type) throws -> UInt { try parse(type) { UInt($0) } }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try parse(type) { UInt8($0) } }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try parse(type) { UInt16($0) } }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try parse(type) { UInt32($0) } }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try parse(type) { UInt64($0) } }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }
}

/// Every value of a repeated field, for an array.
private struct FieldValues: UnkeyedDecodingContainer {
    let values: [String]
    let codingPath: [any CodingKey]
    var currentIndex = 0
    var count: Int? { values.count }
    var isAtEnd: Bool { currentIndex >= values.count }

    init(values: [String], codingPath: [any CodingKey]) {
        self.values = values
        self.codingPath = codingPath
    }

    private struct Index: CodingKey {
        let intValue: Int?
        var stringValue: String { "\(intValue ?? 0)" }
        init(intValue: Int) { self.intValue = intValue }
        init?(stringValue: String) { return nil }
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, values[currentIndex].isEmpty else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, DecodingError.Context(codingPath: codingPath, debugDescription: "no more values"))
        }
        let decoder = FieldDecoder(values: [values[currentIndex]], codingPath: codingPath + [Index(intValue: currentIndex)])
        let value = try T(from: decoder)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        throw FieldDecoder.nested(codingPath)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { throw FieldDecoder.nested(codingPath) }
    mutating func superDecoder() throws -> any Decoder { throw FieldDecoder.nested(codingPath) }
}

extension URLEncodedForm {
    /// The form's fields as a `Decodable` (see ``Request/decodeForm(_:)``).
    ///
    /// - Throws: ``HTTPError`` `400` with a short reason.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws(HTTPError) -> T {
        try FormDecoder(self).decode(type)
    }
}

extension MultipartForm {
    /// The form's text fields as a `Decodable`; file parts are left out
    /// (see ``Request/decodeForm(_:)``).
    ///
    /// - Throws: ``HTTPError`` `400` with a short reason.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws(HTTPError) -> T {
        try FormDecoder(parts.compactMap { part in part.file == nil ? part.text.map { (name: part.name, value: $0) } : nil })
            .decode(type)
    }
}

extension Request {
    /// Decodes a form into `type`, as ``decodeJSON(_:decoder:)`` does JSON:
    /// the fields of an `application/x-www-form-urlencoded` body, or the
    /// text fields of a `multipart/form-data` one (its files: use
    /// ``multipartForm(limits:)`` and ``MultipartForm/decode(_:)``).
    ///
    /// ```swift
    /// struct Signup: Decodable { var name: String; var age: Int?; var newsletter: Bool; var tags: [String] }
    /// router.post("/signup") { request in
    ///     let signup = try request.decodeForm(Signup.self)   // 400 "bad form: age is not a number"
    ///     return .text("hello \(signup.name)")
    /// }
    /// ```
    ///
    /// Strings, numbers, `Bool` (a checkbox: absent or `off` is `false`),
    /// `String`-backed enums, arrays (a repeated field) and optionals
    /// (absent or empty is `nil`); no nested structures.
    ///
    /// - Throws: ``HTTPError`` `415` for another content type, `400` with a
    ///   short reason (the field and what was wrong), or what reading a
    ///   multipart body throws (``forEachPart(limits:_:)``).
    public func decodeForm<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        let type = contentType ?? ""
        if mediaTypeIs(type, "application/x-www-form-urlencoded") { return try form.decode(T.self) }
        if mediaTypeIs(type, "multipart/form-data") { return try multipartForm().decode(T.self) }
        throw HTTPError(.unsupportedMediaType, "expected a form (application/x-www-form-urlencoded or multipart/form-data)")
    }
}
