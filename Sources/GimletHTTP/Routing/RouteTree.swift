/// A registered handler, with its groups' middleware around it, and the
/// names of its captured segments, in order.
struct Route: Sendable {
    let pattern: String
    let parameterNames: [String]
    let options: RouteOptions
    let chain: MiddlewareChain
}

/// One segment of a parsed pattern.
enum PatternSegment: Equatable {
    case literal(String)
    case parameter(String)
    case wildcard
}

enum RoutePattern {
    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    struct Parsed {
        let segments: [PatternSegment]
        let parameterNames: [String]
    }

    static func parse(_ pattern: String) -> Result<Parsed, Problem> {
        guard pattern.hasPrefix("/") else {
            return .failure(Problem(description: "pattern \(String(reflecting: pattern)) must start with /"))
        }
        var segments: [PatternSegment] = []
        var names: [String] = []
        let pieces = pattern.split(separator: "/", omittingEmptySubsequences: true)
        for (index, piece) in pieces.enumerated() {
            if piece == "*" {
                guard index == pieces.count - 1 else {
                    return .failure(Problem(description: "pattern \(String(reflecting: pattern)): * must be the last segment"))
                }
                segments.append(.wildcard)
                names.append("*")
            } else if piece.hasPrefix(":") {
                let name = String(piece.dropFirst())
                guard !name.isEmpty, !names.contains(name) else {
                    return .failure(Problem(description: "pattern \(String(reflecting: pattern)): empty or repeated parameter name"))
                }
                segments.append(.parameter(name))
                names.append(name)
            } else {
                guard let literal = PercentDecoding.decode(piece, plusAsSpace: false) else {
                    return .failure(Problem(description: "pattern \(String(reflecting: pattern)) is not valid UTF-8 once decoded"))
                }
                segments.append(.literal(literal))
            }
        }
        return .success(Parsed(segments: segments, parameterNames: names))
    }

    /// The path's non-empty segments, percent-decoded; `nil` if one is not UTF-8.
    static func decodedSegments(of path: String) -> [String]? {
        var segments: [String] = []
        segments.reserveCapacity(4)
        // One pass over the bytes (no grapheme breaking, no array of slices);
        // a segment without '%' is already its own decoding.
        let utf8 = path.utf8
        var start = utf8.startIndex
        var escaped = false
        var index = start
        while true {
            let atEnd = index == utf8.endIndex
            if atEnd || utf8[index] == UInt8(ascii: "/") {
                if index != start {
                    let piece = Substring(utf8[start..<index])
                    if escaped {
                        guard let decoded = PercentDecoding.decode(piece, plusAsSpace: false) else { return nil }
                        segments.append(decoded)
                    } else {
                        segments.append(String(piece))
                    }
                }
                if atEnd { return segments }
                start = utf8.index(after: index)
                escaped = false
            } else if utf8[index] == UInt8(ascii: "%") {
                escaped = true
            }
            index = utf8.index(after: index)
        }
    }
}

/// A node of the routing trie: one level of path segments.
struct RouteNode: Sendable {
    var literals: [String: RouteNode] = [:]
    /// The `:name` child, at most one (names live in the routes, not here).
    var parameterChild: [RouteNode] = []
    var wildcardRoutes: [HTTPMethod: Route] = [:]
    var routes: [HTTPMethod: Route] = [:]

    /// Adds `route`; `false` if the method and shape are already taken.
    mutating func insert(_ route: Route, segments: ArraySlice<PatternSegment>, method: HTTPMethod) -> Bool {
        guard let first = segments.first else {
            guard routes[method] == nil else { return false }
            routes[method] = route
            return true
        }
        let rest = segments.dropFirst()
        switch first {
        case .literal(let literal):
            return literals[literal, default: RouteNode()].insert(route, segments: rest, method: method)
        case .parameter:
            if parameterChild.isEmpty { parameterChild.append(RouteNode()) }
            return parameterChild[0].insert(route, segments: rest, method: method)
        case .wildcard:
            guard wildcardRoutes[method] == nil else { return false }
            wildcardRoutes[method] = route
            return true
        }
    }

    /// The route for `method` along `segments`, appending captured values;
    /// literals first, then `:name`, then `*`, backtracking as needed.
    func find(_ segments: ArraySlice<String>, method: HTTPMethod, values: inout [String]) -> Route? {
        guard let first = segments.first else {
            if let route = routes[method] { return route }
            if let route = wildcardRoutes[method] {
                values.append("")
                return route
            }
            return nil
        }
        let rest = segments.dropFirst()
        if let child = literals[first], let route = child.find(rest, method: method, values: &values) {
            return route
        }
        if let child = parameterChild.first {
            let mark = values.count
            values.append(first)
            if let route = child.find(rest, method: method, values: &values) { return route }
            values.removeSubrange(mark...)
        }
        if let route = wildcardRoutes[method] {
            values.append(segments.joined(separator: "/"))
            return route
        }
        return nil
    }

    /// Every method that some route along `segments` accepts.
    func collectMethods(_ segments: ArraySlice<String>, into methods: inout Set<HTTPMethod>) {
        methods.formUnion(wildcardRoutes.keys)
        guard let first = segments.first else {
            methods.formUnion(routes.keys)
            return
        }
        let rest = segments.dropFirst()
        literals[first]?.collectMethods(rest, into: &methods)
        parameterChild.first?.collectMethods(rest, into: &methods)
    }
}
