import Foundation
import GimletHost
import Testing

/// The host's options live in three places a user reads: `--help` (from
/// ``HostOptions``), the README's table, and the doc comment of
/// `HostConfiguration(environment:)`. This fails when they disagree.
@Suite struct HostOptionsDocumentation {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `--name` → the help entry that describes it (a long name's text
    /// starts on the next line).
    static var helpLines: [String: String] {
        var lines: [String: String] = [:]
        var current: String?
        for line in HostOptions.helpMessage(columns: 10_000).split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            if trimmed.hasPrefix("--"), let name = trimmed.split(separator: " ").first {
                current = String(name)
                lines[String(name)] = String(trimmed)
            } else if let name = current, line.hasPrefix(" ") {
                lines[name, default: ""] += " " + trimmed
            } else {
                current = nil
            }
        }
        return lines
    }

    /// The README's host-options table: `--name` → its variables.
    static func readmeRows() throws -> [String: [String]] {
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "## Host options").dropFirst().first)
        var rows: [String: [String]] = [:]
        for line in section.split(separator: "\n") where line.hasPrefix("| `--") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count > 2, let option = cells[1].split(separator: " ").first else { continue }
            let name = option.trimmingCharacters(in: CharacterSet(charactersIn: "`,"))
            rows[name] = Self.variables(in: cells[2])
        }
        return rows
    }

    static func variables(in text: some StringProtocol) -> [String] {
        String(text).split { !($0.isUppercase || $0 == "_" || $0.isNumber) }.map(String.init)
            .filter { $0.hasPrefix("GIMLET_") }
    }

    @Test func helpAndTheReadmeListTheSameOptions() throws {
        let readme = Set(try Self.readmeRows().keys).subtracting(["--version"])
        let help = Set(Self.helpLines.keys).subtracting(["--version", "--help"])
        #expect(readme == help, "only in the README: \(readme.subtracting(help)); only in --help: \(help.subtracting(readme))")
    }

    @Test func eachOptionNamesItsVariableInHelpAndTheReadme() throws {
        let rows = try Self.readmeRows()
        for (name, line) in Self.helpLines where name != "--help" && name != "--version" {
            let variable = "GIMLET_" + name.dropFirst(2).uppercased().replacingOccurrences(of: "-", with: "_")
            #expect(line.contains("env \(variable)"), "--help for \(name) names \(variable): \(line)")
            #expect(rows[name] == [variable], "the README's row for \(name) names \(variable): \(rows[name] ?? [])")
        }
    }

    @Test func theEnvironmentsDocCommentListsEveryVariable() throws {
        let source = try String(contentsOf: Self.root.appendingPathComponent("Sources/GimletHost/HostConfiguration+Environment.swift"),
                                encoding: .utf8)
        let documented = Set(source.split(separator: "\n").filter { $0.contains("/// | `GIMLET_") }
            .flatMap { Self.variables(in: $0.split(separator: "|").dropFirst().first ?? "") })
        let readme = Set(try Self.readmeRows().values.joined())
        #expect(documented == readme, "only in the doc comment: \(documented.subtracting(readme)); only in the README: \(readme.subtracting(documented))")
    }
}
