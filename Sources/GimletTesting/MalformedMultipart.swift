import GimletHTTP

/// Broken `multipart/form-data` bodies, made from a good one by cutting it
/// short and corrupting its framing, for an app's upload tests: each must
/// be answered 400 or 413, never a 5xx.
///
/// ```swift
/// for body in MalformedMultipart.corpus(boundary: "xyz") {
///     let answer = client.request("POST", "/upload", body: body, contentType: "multipart/form-data; boundary=xyz")
///     #expect(answer.status == 400 || answer.status == 413)
/// }
/// ```
public enum MalformedMultipart {
    /// Over 200 bodies with `boundary`, every one of them malformed.
    public static func corpus(boundary: String) -> [[UInt8]] {
        func text(_ string: String) -> [UInt8] { Array(string.utf8) }
        let good = text("--\(boundary)\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\n")
            + text("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            + (0..<600).map { UInt8($0 % 251) } + text("\r\n--\(boundary)--\r\n")
        var corpus: [[UInt8]] = []
        // Cut short at 150 places: every one ends inside a part or before a delimiter.
        let closing = good.count - text("--\(boundary)--\r\n").count
        for index in 0..<150 { corpus.append(Array(good.prefix(index * closing / 150))) }
        // A byte of the framing replaced, at each place of the heads and delimiters.
        let framing = Array(0..<110) + Array((closing - 2)..<(closing + boundary.count + 2))
        for index in framing {
            var broken = good
            broken[index] = broken[index] == UInt8(ascii: "#") ? UInt8(ascii: "$") : UInt8(ascii: "#")
            corpus.append(broken)
        }
        // Heads without Content-Disposition, without a name, with no blank line, too long.
        corpus.append(text("--\(boundary)\r\nContent-Type: text/plain\r\n\r\nx\r\n--\(boundary)--\r\n"))
        corpus.append(text("--\(boundary)\r\nContent-Disposition: form-data\r\n\r\nx\r\n--\(boundary)--\r\n"))
        corpus.append(text("--\(boundary)\r\nContent-Disposition: form-data; name=\"a\"\r\nx\r\n--\(boundary)--\r\n"))
        corpus.append(text("--\(boundary)\r\nContent-Disposition: form-data; name=\"a\"\r\nX: " + String(repeating: "y", count: 9000) + "\r\n\r\nx\r\n--\(boundary)--\r\n"))
        corpus.append(text("no delimiter at all"))
        corpus.append([])
        return corpus.filter { body in
            // Keep only bodies that really are broken: a replaced byte inside a
            // field's value or the preamble can leave a valid form.
            var parser = try? MultipartParser(contentType: "multipart/form-data; boundary=" + boundary, limits: MultipartLimits())
            do {
                try parser?.feed(body) { _ in }
                try parser?.finish()
                return false
            } catch {
                return true
            }
        }
    }
}
