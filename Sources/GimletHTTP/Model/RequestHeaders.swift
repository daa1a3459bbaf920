/// A read-only view of the request headers inside a CGI environ.
///
/// CGI passes a header `X-Forwarded-For` as `HTTP_X_FORWARDED_FOR`, and
/// `Content-Type`/`Content-Length` as `CONTENT_TYPE`/`CONTENT_LENGTH`; this
/// view maps names for you, case-insensitively, without copying the environ.
///
/// ```swift
/// request.headers["user-agent"]
/// ```
public struct RequestHeaders {
    let environ: CGIEnvironment

    /// The value of the header `name`, if the server passed it.
    public subscript(name: String) -> String? {
        environ[Self.environKey(for: name)]
    }

    /// Every header the server passed, as (name, value) with names like `User-Agent`.
    public var all: [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        for (key, value) in environ {
            if key.hasPrefix("HTTP_") {
                result.append((Self.headerName(forEnvironKey: key.dropFirst(5)), value))
            } else if key == "CONTENT_TYPE" || key == "CONTENT_LENGTH" {
                result.append((Self.headerName(forEnvironKey: key[...]), value))
            }
        }
        return result.sorted { $0.name < $1.name }
    }

    static func environKey(for name: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(name.utf8.count + 5)
        for byte in name.utf8 {
            if byte == UInt8(ascii: "-") {
                bytes.append(UInt8(ascii: "_"))
            } else if byte >= 0x61 && byte <= 0x7A {
                bytes.append(byte - 0x20)
            } else {
                bytes.append(byte)
            }
        }
        let key = String(decoding: bytes, as: UTF8.self)
        return key == "CONTENT_TYPE" || key == "CONTENT_LENGTH" ? key : "HTTP_" + key
    }

    static func headerName(forEnvironKey key: Substring) -> String {
        key.split(separator: "_", omittingEmptySubsequences: false)
            .map { $0.prefix(1).uppercased() + $0.dropFirst().lowercased() }
            .joined(separator: "-")
    }
}
