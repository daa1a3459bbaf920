/// What every request needs from its environ before anything else: the
/// method, the routed path, the query string and the web server's request
/// id, found in **one pass** over the environ's entries (each of them
/// looked up on its own was a search of some thirty entries, twice for an
/// `HTTP_` header). The transport finds it once; the request and the host's
/// monitor share it.
package struct RequestLine {
    /// `REQUEST_METHOD`, `GET` when missing.
    package var method: HTTPMethod
    /// The routed path (see ``Request/path``).
    package var path: String
    /// `QUERY_STRING`, else the query part of `REQUEST_URI`.
    package var queryString: String
    /// Where `HTTP_X_REQUEST_ID` is: read only when the host's monitor asks.
    private let requestIDEntry: (last: Int, count: Int)

    package init(_ environ: CGIEnvironment) {
        let found = environ.requestLineEntries()
        method = HTTPMethod(environ.value(ofEntry: found.method) ?? "GET")
        let uri = environ.value(ofEntry: found.uri)
        queryString = environ.value(ofEntry: found.query) ?? Request.queryPart(of: uri)
        if let uri, !uri.isEmpty {
            path = Request.routedPath(uri: uri, scriptName: nil, pathInfo: nil)
        } else {
            path = Request.routedPath(uri: nil, scriptName: environ.value(ofEntry: found.scriptName),
                                      pathInfo: environ.value(ofEntry: found.pathInfo))
        }
        requestIDEntry = (found.requestID, found.requestIDs)
    }

    /// `X-Request-Id` as the web server passed it in `environ`, this line's
    /// environ (`HTTP_X_REQUEST_ID`, several joined), unchecked.
    package func requestIDHeader(in environ: CGIEnvironment) -> String? {
        requestIDEntry.count > 1 ? environ["HTTP_X_REQUEST_ID"] : environ.value(ofEntry: requestIDEntry.last)
    }
}
