import Foundation
import GimletHost
import Testing

/// The version a build says it is, the changelog and the README agree.
@Suite struct Release {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The first version heading is `Host.version`'s; only an `## Unreleased`
    /// section of what has landed since may come before it, as the file's start.
    @Test func theChangelogsFirstVersionIsHostVersion() throws {
        let changelog = try String(contentsOf: Self.root.appendingPathComponent("CHANGELOG.md"), encoding: .utf8)
        let headings = changelog.split(separator: "\n").filter { $0.hasPrefix("#") }
        let first = try #require(headings.first)
        #expect(changelog.hasPrefix(String(first)), "a heading is the file's first line")
        let version = try #require(headings.first { $0 != "## Unreleased" })
        #expect(first == "## Unreleased" || first == version, "only Unreleased comes before the versions: \(first)")
        #expect(version.hasPrefix("## \(Host.version) "), "the first version is \(version), Host.version is \(Host.version)")
    }

    @Test func theVersionIsSemantic() {
        let parts = Host.version.split(separator: ".", omittingEmptySubsequences: false)
        #expect(parts.count == 3 && parts.allSatisfy { UInt($0) != nil }, "MAJOR.MINOR.PATCH: \(Host.version)")
    }
}
