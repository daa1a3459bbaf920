import GimletHost
import GimletTransport
import Testing

/// Every host option as an operator writes it: from the environment, from
/// the command line (which wins), and refused with its own name when wrong.
@Suite struct HostOptionsParsing {
    /// An option, its variable, a value, and what the configuration says of it.
    struct Case: Sendable, CustomTestStringConvertible {
        let option: String
        let value: String
        let other: String
        let read: @Sendable (HostConfiguration) -> String
        var variable: String { "GIMLET_" + option.uppercased().replacingOccurrences(of: "-", with: "_") }
        var testDescription: String { "--\(option)" }
    }

    static let cases: [Case] = [
        Case(option: "fastcgi", value: "127.0.0.1:9000", other: "unix:/run/app.sock") { "\($0.transport)" },
        Case(option: "scgi", value: "127.0.0.1:4000", other: "unix:/run/app.sock") { "\($0.transport)" },
        Case(option: "workers", value: "4", other: "2") { "\($0.workers)" },
        Case(option: "threads", value: "8", other: "3") { "\($0.threads)" },
        Case(option: "socket-mode", value: "660", other: "600") { "\($0.socketMode.map { String($0, radix: 8) } ?? "-")" },
        Case(option: "log-level", value: "debug", other: "error") { "\($0.logLevel)" },
        Case(option: "read-timeout", value: "12", other: "5") { "\($0.readTimeout)" },
        Case(option: "ping-path", value: "/-/ping", other: "/ping") { $0.pingPath ?? "-" },
        Case(option: "status-path", value: "/-/status", other: "/status") { $0.statusPath ?? "-" },
        Case(option: "metrics-path", value: "/-/metrics", other: "/metrics") { $0.metricsPath ?? "-" },
        Case(option: "slow-request", value: "250", other: "1000") { "\($0.slowRequest.map { "\($0)" } ?? "-")" },
        Case(option: "request-timeout", value: "30", other: "10") { "\($0.requestTimeout.map { "\($0)" } ?? "-")" },
        Case(option: "drain", value: "5", other: "1") { "\($0.drain)" },
        Case(option: "access-log", value: "/var/log/app/access.log", other: "-") { $0.accessLog ?? "-" },
        Case(option: "access-log-query", value: "yes", other: "no") { "\($0.accessLogQuery)" },
        Case(option: "log-format", value: "json", other: "text") { "\($0.logFormat)" },
        Case(option: "allowed-clients", value: "10.0.0.5,10.0.1.0/24", other: "10.0.0.9") {
            "\($0.allowedClients.map { "\($0)" } ?? "-")"
        },
    ]

    @Test(arguments: cases)
    func theOptionWinsOverItsVariableWhichWinsOverTheDefault(case given: Case) throws {
        let defaults = try HostOptions.parse([]).configuration(environment: [:])
        let fromVariable = try HostOptions.parse([]).configuration(environment: [given.variable: given.value])
        let fromBoth = try HostOptions.parse(["--" + given.option, given.other]).configuration(environment: [given.variable: given.value])
        let fromOption = try HostOptions.parse(["--" + given.option, given.other]).configuration(environment: [:])
        #expect(given.read(fromVariable) != given.read(defaults), "\(given.variable) changes the configuration")
        #expect(given.read(fromBoth) == given.read(fromOption), "--\(given.option) wins over \(given.variable)")
        #expect(given.read(fromBoth) != given.read(fromVariable))
    }

    @Test(arguments: [
        ("workers", "many"), ("threads", "0"), ("threads", "-2"), ("socket-mode", "999"), ("log-level", "loud"),
        ("read-timeout", "0"), ("ping-path", "ping"), ("status-path", "status"), ("slow-request", "soon"),
        ("request-timeout", "-1"), ("drain", "x"), ("access-log-query", "maybe"), ("log-format", "xml"),
        ("allowed-clients", "10.0.0.0/40"), ("fastcgi", "nowhere"), ("max-requests", "0"),
    ])
    func aBadValueIsRefusedWithTheNameItCameUnder(option: String, value: String) throws {
        let variable = "GIMLET_" + option.uppercased().replacingOccurrences(of: "-", with: "_")
        let workers = option == "max-requests" ? ["--workers", "2"] : []
        let fromOption = #expect(throws: HostConfigurationError.self) {
            try HostOptions.parse(workers + ["--\(option)=\(value)"]).configuration(environment: [:])
        }
        #expect(fromOption?.message.contains("--" + option) == true, "\(String(describing: fromOption))")
        let fromVariable = #expect(throws: HostConfigurationError.self) {
            try HostOptions.parse(workers).configuration(environment: [variable: value])
        }
        #expect(fromVariable?.message.contains(variable) == true, "\(String(describing: fromVariable))")
    }

    @Test func maxRequestsNeedsWorkers() throws {
        let error = #expect(throws: HostConfigurationError.self) {
            try HostOptions.parse(["--max-requests", "100"]).configuration(environment: [:])
        }
        #expect(error?.message.contains("--max-requests needs --workers") == true)
        #expect(try HostOptions.parse(["--max-requests", "100", "--workers", "2"]).configuration(environment: [:]).maxRequests == 100)
    }

    @Test func oneTransportFromEachSourceTheOptionsWinning() throws {
        #expect(try HostOptions.parse([]).configuration(environment: [:]).transport == .fastCGI(.inherited), "spawn-fcgi's socket by default")
        let scgi = try HostOptions.parse(["--scgi", "127.0.0.1:4000"]).configuration(environment: ["GIMLET_FASTCGI": "127.0.0.1:9000"])
        #expect(scgi.transport == .scgi(.tcp(host: "127.0.0.1", port: 4000)), "the option replaces the variable's FastCGI")
        #expect(scgi.scgiConfiguration.listen == .tcp(host: "127.0.0.1", port: 4000))
        let both = #expect(throws: HostConfigurationError.self) {
            try HostOptions.parse(["--scgi", "127.0.0.1:4000", "--fastcgi", "127.0.0.1:9000"]).configuration(environment: [:])
        }
        #expect(both?.message == "both --fastcgi and --scgi are set; pick one")
        #expect(throws: HostConfigurationError.self) {
            try HostConfiguration(environment: ["GIMLET_FASTCGI": "127.0.0.1:9000", "GIMLET_SCGI": "127.0.0.1:4000"])
        }
    }
}
