import Foundation

/// wrk, the load tests' real client: one thread, many keep-alive connections.
struct Wrk: Sendable {
    /// What one run reports.
    struct Result: CustomStringConvertible {
        /// Responses received.
        var requests: Int
        /// Responses with a status of 400 or more.
        var failures: Int
        /// Connect, read, write and timeout errors, as wrk prints them ("" if none).
        var socketErrors: String
        /// Lines the Lua script printed in `done`.
        var scriptOutput: [String]
        /// The 99th percentile of latency in milliseconds, with `latency: true`.
        var p99Milliseconds: Double?
        var raw: String

        var description: String { raw }
    }

    let scratch: TemporaryDirectory

    /// Lua that prints, at the end, each thread's `counters` (globals of the
    /// script) as one `script:` line, space-separated, read back in
    /// ``Result/scriptOutput``.
    static func reporting(_ counters: [String]) -> String {
        """

        threads = {}
        setup = function(thread) table.insert(threads, thread) end
        done = function()
          for _, t in ipairs(threads) do
            io.write("script:" .. \(counters.map { "t:get(\"\($0)\")" }.joined(separator: " .. \" \" .. ")) .. "\\n")
          end
        end

        """
    }

    /// Loads `url` for `seconds` over `connections` connections; `script` is
    /// Lua for wrk (`request`, `response`, `done`, …), if any.
    func run(_ url: String, seconds: Int, connections: Int = 16, headers: [String: String] = [:],
             script: String? = nil, latency: Bool = false) throws -> Result {
        var arguments = ["-t1", "-c\(connections)", "-d\(seconds)s", "--timeout", "10s"] + (latency ? ["--latency"] : [])
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { arguments += ["-H", "\(name): \(value)"] }
        if let script {
            let file = scratch.file("wrk-\(UUID().uuidString).lua")
            try script.write(toFile: file, atomically: true, encoding: .utf8)
            arguments += ["-s", file]
        }
        let outcome = try runToCompletion(try Tool.wrk(), arguments + [url])
        let text = String(decoding: outcome.output, as: UTF8.self)
        let errors = String(decoding: outcome.errors, as: UTF8.self)
        // wrk runs a script it cannot load as no script at all, saying so only on stderr.
        guard outcome.status == 0, errors.isEmpty, let requests = Self.number(after: nil, before: " requests in", in: text) else {
            throw SetupError("wrk failed (\(outcome.status)): \(text) \(errors)")
        }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        return Result(
            requests: requests,
            failures: Self.number(after: "Non-2xx or 3xx responses: ", before: nil, in: text) ?? 0,
            socketErrors: lines.first { $0.hasPrefix("Socket errors:") } ?? "",
            scriptOutput: lines.filter { $0.hasPrefix("script:") }.map { String($0.dropFirst("script:".count)) },
            p99Milliseconds: lines.first { $0.hasPrefix("99%") }.flatMap { Self.milliseconds($0.dropFirst(3)) },
            raw: text)
    }

    /// Starts ``run(_:seconds:connections:headers:script:)`` on a thread of its
    /// own, so the test can act during the load; the returned function waits
    /// for the result.
    func start(_ url: String, seconds: Int, connections: Int = 16, headers: [String: String] = [:],
               script: String? = nil) -> () throws -> Result {
        let finished = Handoff<Swift.Result<Result, any Error>>()
        Thread {
            finished.put(Swift.Result { try run(url, seconds: seconds, connections: connections, headers: headers, script: script) })
        }.start()
        return {
            guard let outcome = finished.take(seconds: Double(seconds) + 60) else {
                throw SetupError("wrk did not finish within \(seconds + 60) s")
            }
            return try outcome.get()
        }
    }

    /// wrk's `1.23ms`, `456.00us` or `1.50s`, in milliseconds.
    static func milliseconds(_ text: Substring) -> Double? {
        let value = text.trimmingCharacters(in: .whitespaces)
        for (unit, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where value.hasSuffix(unit) {
            return Double(value.dropLast(unit.count)).map { $0 * scale }
        }
        return nil
    }

    /// The integer in `text` right after `prefix`, or right before `suffix`.
    private static func number(after prefix: String?, before suffix: String?, in text: String) -> Int? {
        for line in text.split(separator: "\n") {
            if let prefix, let range = line.range(of: prefix) {
                return Int(line[range.upperBound...].prefix { $0.isNumber })
            }
            if let suffix, let range = line.range(of: suffix) {
                return Int(String(line[..<range.lowerBound].reversed().prefix { $0.isNumber }.reversed()))
            }
        }
        return nil
    }
}
