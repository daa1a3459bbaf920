@testable import GimletHTTP
import Testing

/// Forms into `Decodable` values, as HTML forms send them.
@Suite struct FormsIntoDecodables {
    enum Size: String, Decodable { case small, large }

    struct Signup: Decodable, Equatable {
        var name: String
        var age: Int?
        var newsletter: Bool
        var tags: [String]
        var size: Size
        var ratio: Double?
    }

    static func request(_ body: String, contentType: String = "application/x-www-form-urlencoded") -> Request {
        Request(environ: ["REQUEST_METHOD": "POST", "REQUEST_URI": "/", "CONTENT_TYPE": contentType], body: Array(body.utf8))
    }

    @Test func fieldsBecomeTheirTypes() throws {
        let signup = try Self.request("name=Ada+L&age=36&newsletter=on&tags=a&tags%5B%5D=b&size=large&ratio=")
            .decodeForm(Signup.self)
        #expect(signup == Signup(name: "Ada L", age: 36, newsletter: true, tags: ["a", "b"], size: .large, ratio: nil))
        // An unchecked box sends nothing; an empty optional is nil.
        let plain = try Self.request("name=B&age=&size=small&tags=x").decodeForm(Signup.self)
        #expect(plain == Signup(name: "B", age: nil, newsletter: false, tags: ["x"], size: .small, ratio: nil))
    }

    @Test(arguments: [
        ("age=1&newsletter=on&tags=a&size=small", "bad form: missing name"),
        ("name=a&age=old&tags=a&size=small", "bad form: age is not a number"),
        ("name=a&newsletter=maybe&tags=a&size=small", "bad form: newsletter is not a boolean"),
        ("name=a&tags=a&size=medium", "bad form: size has an invalid value"),
    ])
    func aBadFieldIsA400ThatNamesIt(body: String, reason: String) {
        let error = #expect(throws: HTTPError.self) { try Self.request(body).decodeForm(Signup.self) }
        #expect(error?.status == .badRequest)
        #expect(error?.message == reason)
    }

    @Test func multipartTextFieldsDecodeTooAndOtherTypesAre415() throws {
        let body = "--xx\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n"
            + "--xx\r\nContent-Disposition: form-data; name=\"size\"\r\n\r\nsmall\r\n"
            + "--xx\r\nContent-Disposition: form-data; name=\"tags\"; filename=\"t.txt\"\r\n\r\nignored\r\n--xx--\r\n"
        struct Small: Decodable, Equatable { var name: String; var size: Size; var tags: [String]? }
        let decoded = try Self.request(body, contentType: "multipart/form-data; boundary=xx").decodeForm(Small.self)
        #expect(decoded == Small(name: "Ada", size: .small, tags: nil))
        let error = #expect(throws: HTTPError.self) { try Self.request("{}", contentType: "application/json").decodeForm(Small.self) }
        #expect(error?.status == .unsupportedMediaType)
    }

    @Test func nestedValuesAreNotPartOfAForm() {
        struct Outer: Decodable { struct Inner: Decodable { var a: Int }; var inner: Inner }
        let error = #expect(throws: HTTPError.self) { try URLEncodedForm("inner=1").decode(Outer.self) }
        #expect(error?.message == "bad form: inner has an invalid value")
    }
}
