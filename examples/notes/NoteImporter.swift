// Fetching a note from a URL: notes' use of an async library (URLSession).
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GimletHTTP

/// Fetches the text of a note from an allowed origin.
///
/// Only origins listed in `NOTES_IMPORT_ORIGINS` (comma-separated, such as
/// `https://pastebin.example,http://127.0.0.1:8000`) are fetched from: a
/// server that fetches any URL a visitor names can be made to reach inside
/// the network it runs in. With none listed, importing is off.
struct NoteImporter: Sendable {
    let origins: Set<HTTPOrigin>

    /// The largest text fetched.
    static let maximumBytes = 64 * 1024

    init(origins list: String) throws {
        var origins = Set<HTTPOrigin>()
        for entry in list.split(separator: ",") {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            guard let origin = HTTPOrigin(trimmed), origin.scheme == "http" || origin.scheme == "https" else {
                throw ImportConfigurationError(description: "NOTES_IMPORT_ORIGINS: \(trimmed) is not an origin such as https://example.org or http://127.0.0.1:8000")
            }
            origins.insert(origin)
        }
        self.origins = origins
    }

    /// The origin of an http or https URL; `nil` for anything else.
    static func origin(of url: URL) -> HTTPOrigin? {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else { return nil }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host   // IPv6
        return HTTPOrigin("\(scheme)://\(bracketed)" + (url.port.map { ":\($0)" } ?? ""))
    }

    /// The text at `address`, awaited from URLSession.
    ///
    /// - Throws: ``HTTPError``: 403 when importing is off or the origin is
    ///   not allowed, 400 for a URL that is not http(s), 502 when the fetch
    ///   fails or does not answer 200 with UTF-8 text of at most 64 KiB.
    func fetchText(from address: String) async throws -> String {
        guard !origins.isEmpty else {
            throw HTTPError(.forbidden, "Importing is off: set NOTES_IMPORT_ORIGINS to the origins notes may fetch from.")
        }
        guard let url = URL(string: address), let origin = Self.origin(of: url) else {
            throw HTTPError(.badRequest, "url must be an http or https URL")
        }
        guard origins.contains(origin) else { throw HTTPError(.forbidden, "notes does not import from \(origin)") }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: URLRequest(url: url, timeoutInterval: 5))
        } catch {
            try Task.checkCancellation()
            throw HTTPError(.badGateway, "could not fetch \(address): \(error.localizedDescription)")
        }
        guard let status = (response as? HTTPURLResponse)?.statusCode, status == 200 else {
            throw HTTPError(.badGateway, "\(address) did not answer 200")
        }
        guard data.count <= Self.maximumBytes, let text = String(data: data, encoding: .utf8) else {
            throw HTTPError(.badGateway, "\(address) did not answer UTF-8 text of at most \(Self.maximumBytes) bytes")
        }
        return text
    }
}

/// `NOTES_IMPORT_ORIGINS` lists something that is not an origin.
struct ImportConfigurationError: Error, CustomStringConvertible {
    let description: String
}
