extension HTTPError {
    /// The response for this error in the form the client asked for with
    /// `Accept`: JSON (`{"error":{"status":403,"message":"…"}}`) for JSON
    /// clients, a small HTML page for browsers, plain text otherwise. A
    /// request that sends a JSON body (`Content-Type: application/json`)
    /// and accepts anything (`*/*`, or no `Accept`) is a JSON client too.
    ///
    /// The router answers every error this way, and so does the host for
    /// its own (413 for a body over `--max-body`, 400 for a bad
    /// `Content-Length`, 500 for an unsafe response), so a browser sees a
    /// page and `fetch` or `curl -H 'Accept: application/json'` sees JSON.
    public func response(for request: Request) -> Response {
        response(in: ErrorFormat(accept: request.headers["Accept"], contentType: request.headers["Content-Type"]))
    }

    /// The response for this error in `format`.
    func response(in format: ErrorFormat) -> Response {
        let text = message ?? status.reasonPhrase
        var response: Response
        switch format {
        case .json:
            response = Response(status: status, headers: ["Content-Type": "application/json"],
                                body: Array("{\"error\":{\"status\":\(status.code),\"message\":\(Self.jsonString(text))}}\n".utf8))
        case .html:
            let title = "\(status.code) \(HTMLText.escape(status.reasonPhrase))"
            response = .html("""
                <!doctype html>
                <html lang=en><meta charset=utf-8><meta name=viewport content="width=device-width, initial-scale=1">
                <title>\(title)</title>
                <style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}p{color:#555}</style>
                <h1>\(title)</h1>
                <p>\(HTMLText.escape(text))</p>
                <p><a href="/">Back to the start page</a></p>

                """, status: status)
        case .text:
            response = .text(text, status: status)
        }
        for (name, value) in headers { response.headers.add(name, value) }
        return response
    }

    /// A JSON string literal for `text`.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// What form an error answer takes, from the request's `Accept`.
enum ErrorFormat: Equatable {
    case json, html, text

    /// The form for a request's `Accept` and `Content-Type`: what
    /// ``init(accept:)`` says, except that a client sending JSON that
    /// names neither JSON nor HTML (no `Accept`, `*/*`) gets JSON.
    init(accept: String?, contentType: String?) {
        self.init(accept: accept)
        if self == .text, !Self.names(accept, "text/plain"), let contentType, Self.isJSON(contentType) { self = .json }
    }

    /// The form for the CGI parameters of a request not yet read.
    init(environ: CGIEnvironment) {
        self.init(accept: environ["HTTP_ACCEPT"], contentType: environ["CONTENT_TYPE"])
    }

    /// Whether a media type (parameters allowed) is JSON: `application/json` or `application/…+json`.
    static func isJSON(_ mediaType: String) -> Bool {
        let type = (mediaType.split(separator: ";").first.map(String.init) ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        return type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json"))
    }

    private static func names(_ accept: String?, _ type: String) -> Bool {
        (accept ?? "").lowercased().split(separator: ",").contains {
            ($0.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces) == type
        }
    }

    /// JSON when a JSON type is acceptable and preferred to HTML, HTML when
    /// `text/html` is listed (browsers), text otherwise (`*/*`, curl).
    init(accept: String?) {
        guard let accept, !accept.isEmpty else { self = .text; return }
        var json: Double = 0, html: Double = 0
        for item in accept.split(separator: ",") {
            let parts = item.split(separator: ";")
            let type = String(parts.first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
            var quality = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if pair.count == 2, pair[0] == "q", let value = Double(pair[1]) { quality = value }
            }
            if Self.isJSON(type) {
                json = max(json, quality)
            } else if type == "text/html" || type == "application/xhtml+xml" {
                html = max(html, quality)
            }
        }
        if json > 0 && json >= html { self = .json } else if html > 0 { self = .html } else { self = .text }
    }
}

/// Escaping for text placed in HTML.
public enum HTMLText {
    /// `text` with `&`, `<`, `>`, `"` and `'` escaped, safe in element content and quoted attributes.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
